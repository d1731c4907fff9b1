import { type CanActivate, createParamDecorator, type ExecutionContext, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { GatewayError } from '../http/gateway-error.js';
import { ATTR, inSpanSync, SPAN } from '../tracing/gateway-tracer.js';
import { ApiKeyStore, type AuthenticatedClient } from './api-key-store.js';

export interface AuthenticatedRequest extends Request {
  client?: AuthenticatedClient;
}

/** Runs before anything else on a protected route: no key, no further work, no vendor call. */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(private readonly store: ApiKeyStore) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    return inSpanSync(SPAN.apiKey, {}, (span) => {
      const key = bearerToken(request.headers.authorization);
      const client = key === undefined ? undefined : this.store.authenticate(key);
      if (!client) {
        span.setAttribute(ATTR.outcome, key === undefined ? 'missing' : 'unknown');
        throw new UnauthorizedError(
          key === undefined ? 'Missing API key: send Authorization: Bearer <key>' : 'Unknown API key',
        );
      }
      span.setAttributes({ [ATTR.clientId]: client.clientId, [ATTR.outcome]: 'accepted' });
      request.client = client;
      return true;
    });
  }
}

/** Handler parameter: the client id ApiKeyGuard authenticated. */
export const CallingClient = createParamDecorator(
  (_data: unknown, context: ExecutionContext): string =>
    context.switchToHttp().getRequest<AuthenticatedRequest>().client!.clientId,
);

export class UnauthorizedError extends GatewayError {
  constructor(message: string) {
    super(401, message);
  }
}

function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer +([\x21-\x7e]{1,512})\s*$/i.exec(header ?? '');
  return match?.[1];
}
