import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import type { Request } from 'express';
import { APP_CONFIG } from '../config/config.module.js';
import { GatewayError } from './gateway-error.js';
import type { HttpSettings } from './http.settings.js';
import { invalidUtf8Field } from './invalid-utf8-field.js';
import { jsonBodyBoundsBreach } from './json-body-bounds.js';
import { hasBody, JsonBodyReader, parseJsonBody } from './json-body-reader.js';
import { matchedRoute } from './matched-route.js';
import { RefusedBodies } from './refused-bodies.js';
import { RequestValidationError } from './request-validation.error.js';

/** How one route reads its body: its byte limit, and how many keys the parsed body may hold. */
interface RouteBody {
  readonly reader: JsonBodyReader;
  readonly maxTotalKeys: number;
}

/**
 * Reads, parses and bounds the body, as the last guard: only once the caller is authenticated
 * and within its quota, so that an unauthenticated caller learns nothing but 401 and costs no
 * body read. A body outside its bounds (keys, depth, UTF-8) is refused here, before validation
 * and transformation, whose cost grows faster than the body.
 */
@Injectable()
export class JsonBodyGuard implements CanActivate {
  private readonly defaultBody: RouteBody;
  /** `METHOD /route` -> the body of a route with limits of its own. */
  private readonly routeBodies: ReadonlyMap<string, RouteBody>;

  constructor(
    @Inject(APP_CONFIG) config: { readonly http: HttpSettings },
    private readonly refusedBodies: RefusedBodies,
  ) {
    const { http } = config;
    this.defaultBody = { reader: new JsonBodyReader(http.bodyLimitBytes), maxTotalKeys: http.bodyLimitTotalKeys };
    this.routeBodies = new Map(
      http.routeBodyLimits.map(({ method, path, bytes, totalKeys }) => [
        `${method} ${path}`,
        { reader: new JsonBodyReader(bytes), maxTotalKeys: totalKeys },
      ]),
    );
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<Request>();
    if (!hasBody(request)) {
      throw new RequestValidationError([{ field: 'body', reason: 'is required: a JSON object' }]);
    }
    if (!request.is('application/json')) throw new GatewayError(415, 'Content-Type must be application/json');
    const routeKey = `${request.method} ${matchedRoute(request)}`;
    const route = this.routeBodies.get(routeKey) ?? this.defaultBody;
    const { raw, validUtf8 } = await route.reader.read(request);
    // A body refused before is answered again by its bytes, before it is parsed.
    const refusedBefore = this.refusedBodies.recall(routeKey, raw);
    if (refusedBefore) throw refusedBefore;
    const body = parseJsonBody(raw);
    request.body = body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new RequestValidationError([{ field: 'body', reason: 'must be a JSON object' }]);
    }
    const breach = jsonBodyBoundsBreach(body, route.maxTotalKeys);
    if (breach) throw new RequestValidationError([breach]);
    if (!validUtf8) {
      throw new RequestValidationError([{ field: invalidUtf8Field(raw, body), reason: 'must be valid UTF-8' }]);
    }
    this.refusedBodies.consider(request, routeKey, raw);
    return true;
  }
}
