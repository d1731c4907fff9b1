import { Global, Module } from '@nestjs/common';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { ZegoModule } from '../zego/zego.module.js';
import { GatewayMetrics } from './gateway-metrics.js';
import { MetricsController } from './metrics.controller.js';

/** One registry per application (not prom-client's global one), so in-process tests stay apart. */
function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** GET /metrics and what it shows; HttpMetricsMiddleware is mounted with the other global middleware (AppModule). */
@Global()
@Module({
  imports: [ZegoModule],
  controllers: [MetricsController],
  providers: [{ provide: Registry, useFactory: createRegistry }, GatewayMetrics],
  exports: [Registry, GatewayMetrics],
})
export class MetricsModule {}
