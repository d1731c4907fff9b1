import { ApiResponse } from '@nestjs/swagger';
import { ErrorBodyDto } from '../http/error-body.dto.js';

// ---------------------------------------------------------------- OpenAPI: response headers

export const REQUEST_ID_HEADER = {
  'X-Request-Id': {
    description: "The request's id: the caller's X-Request-Id when it was a plain one, a new UUID otherwise.",
    schema: { type: 'string' },
  },
};

/** Set by ClientQuotaGuard on every request that got past the API key and the client's quota. */
export const RATE_LIMIT_HEADERS = {
  'X-RateLimit-Limit': {
    description: "The client's quota: requests per second (CLIENT_RATE_LIMIT or its override).",
    schema: { type: 'integer' },
  },
  'X-RateLimit-Remaining': {
    description: 'Requests left in the current second.',
    schema: { type: 'integer' },
  },
  'X-RateLimit-Reset': {
    description: 'Seconds until the quota frees up again.',
    schema: { type: 'integer' },
  },
};

export const RETRY_AFTER = {
  'Retry-After': {
    description: 'Whole seconds to wait before trying again.',
    schema: { type: 'integer', minimum: 0 },
  },
};

/** An error answer after the quota check: the one error shape and the usual headers. */
export function errorResponse(status: number, description: string, extraHeaders: object = {}) {
  return ApiResponse({
    status,
    description,
    type: ErrorBodyDto,
    headers: { ...REQUEST_ID_HEADER, ...RATE_LIMIT_HEADERS, ...extraHeaders },
  });
}
