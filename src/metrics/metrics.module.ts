import { Global, type MiddlewareConsumer, Module, type NestModule } from '@nestjs/common';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { ZegoModule } from '../zego/zego.module.js';
import { GatewayMetrics } from './gateway-metrics.js';
import { HttpMetricsMiddleware } from './http-metrics.middleware.js';
import { MetricsController } from './metrics.controller.js';

/** One registry per application (not prom-client's global one), so in-process tests stay apart. */
function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

@Global()
@Module({
  imports: [ZegoModule],
  controllers: [MetricsController],
  providers: [{ provide: Registry, useFactory: createRegistry }, GatewayMetrics],
  exports: [Registry],
})
export class MetricsModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(HttpMetricsMiddleware).forRoutes('{*path}');
  }
}
