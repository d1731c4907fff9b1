import type { ExecutionContext } from '@nestjs/common';
import type { AuthenticatedRequest } from '../auth/api-key.guard.js';
import type { AppConfig } from '../config/app-config.js';

/** CLIENT_RATE_LIMIT with the CLIENT_RATE_LIMITS overrides: requests per second per client. */
export function quotaPerSecond(config: AppConfig, context: ExecutionContext): number {
  const clientId = context.switchToHttp().getRequest<AuthenticatedRequest>().client?.clientId;
  const { perSecond, overrides } = config.clientQuota;
  return (clientId !== undefined ? overrides[clientId] : undefined) ?? perSecond;
}
