import { type CanActivate, createParamDecorator, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import type { AuthenticatedRequest } from '../auth/api-key.guard.js';
import { APP_CONFIG } from '../config/config.module.js';
import { RequestValidationError } from '../http/request-validation.error.js';
import { PRIORITIES, type OutboundSettings, type Priority } from './rate-limit.settings.js';

export const PRIORITY_HEADER = 'X-Priority';

interface PrioritizedRequest extends AuthenticatedRequest {
  priority?: Priority;
}

/**
 * The level a request's vendor calls wait at: its client's (CLIENT_PRIORITIES, `interactive` for
 * a client not named), or lower when the request asks with `X-Priority: batch`; never higher than
 * its client's. An unknown value is a 400 naming the header. Runs after ApiKeyGuard.
 */
@Injectable()
export class PriorityGuard implements CanActivate {
  constructor(@Inject(APP_CONFIG) private readonly config: { readonly outbound: OutboundSettings }) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<PrioritizedRequest>();
    const clientId = request.client?.clientId;
    const clientLevel = (clientId !== undefined ? this.config.outbound.priorities[clientId] : undefined) ?? 'interactive';
    const asked = request.headers[PRIORITY_HEADER.toLowerCase()];
    if (asked === undefined) {
      request.priority = clientLevel;
      return true;
    }
    const value = typeof asked === 'string' ? asked.trim().toLowerCase() : '';
    if (!(PRIORITIES as readonly string[]).includes(value)) {
      throw new RequestValidationError([
        { field: PRIORITY_HEADER, reason: `must be ${PRIORITIES.join(' or ')}, sent once` },
      ]);
    }
    request.priority = value === 'batch' || clientLevel === 'batch' ? 'batch' : 'interactive';
    return true;
  }
}

/** Handler parameter: the level PriorityGuard settled on. */
export const CallPriority = createParamDecorator(
  (_data: unknown, context: ExecutionContext): Priority =>
    context.switchToHttp().getRequest<PrioritizedRequest>().priority ?? 'interactive',
);
