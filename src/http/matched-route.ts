import type { Request } from 'express';

/**
 * The route pattern that matched the request (e.g. `/rooms`), or undefined for unknown URLs.
 * Logs and metrics use the pattern, never the raw path, so callers cannot grow their label sets.
 */
export function matchedRoute(request: Pick<Request, 'route' | 'baseUrl'>): string | undefined {
  const pattern = (request.route as { path?: unknown } | undefined)?.path;
  return typeof pattern === 'string' ? `${request.baseUrl ?? ''}${pattern}` : undefined;
}
