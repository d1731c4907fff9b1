import { Controller, Get, Header, Res, ServiceUnavailableException } from '@nestjs/common';
import { HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import type { Response } from 'express';
import { ReadinessIndicators } from './readiness.indicators.js';

/**
 * Kubernetes probes. No API key, no vendor call. Liveness depends on nothing outside the process,
 * so a Redis outage never gets every pod restarted; readiness says whether to route traffic here.
 * Bodies are terminus's `{status, info, error, details}`, also on 503.
 */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly readiness: ReadinessIndicators,
  ) {}

  @Get('live')
  @Header('Cache-Control', 'no-store')
  live(@Res() response: Response): Promise<void> {
    return this.answer(response, [() => this.indicators.check('process').up({ uptimeSeconds: Math.round(process.uptime()) })]);
  }

  @Get('ready')
  @Header('Cache-Control', 'no-store')
  ready(@Res() response: Response): Promise<void> {
    return this.answer(response, [
      () => this.readiness.lifecycle(),
      () => this.readiness.outboundLimiter(),
      () => this.readiness.mountedSecrets(),
    ]);
  }

  private async answer(response: Response, checks: Parameters<HealthCheckService['check']>[0]): Promise<void> {
    try {
      response.status(200).json(await this.health.check(checks));
    } catch (error) {
      if (!(error instanceof ServiceUnavailableException)) throw error;
      response.status(503).json(error.getResponse());
    }
  }
}
