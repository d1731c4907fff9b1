import { STATUS_CODES } from 'node:http';
import {
  type ArgumentsHost,
  Catch,
  Injectable,
  type ExceptionFilter,
  HttpException,
  Logger,
} from '@nestjs/common';
import type { Response } from 'express';
import type { ErrorBody } from './error-body.js';
import { ErrorBodyWriter } from './error-body-writer.js';
import { GatewayError } from './gateway-error.js';
import { recordRefusalReason } from './refusal-reason.js';
import { RefusedBodies } from './refused-bodies.js';
import { RequestValidationError } from './request-validation.error.js';
import type { RequestWithId } from './request-id.middleware.js';

/** Turns every failure into the one error shape; unexpected ones are logged, not shown. */
@Catch()
@Injectable()
export class HttpExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('HttpExceptionFilter');
  private readonly bodies = new ErrorBodyWriter();

  constructor(private readonly refusedBodies: RefusedBodies) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<RequestWithId>();
    const response = http.getResponse<Response>();
    const requestId = request.requestId ?? 'unknown';
    // The caller hung up while waiting: nobody is left to answer, and nothing went wrong.
    if (response.writableEnded || response.socket?.destroyed === true) return;
    if (exception instanceof RequestValidationError) this.refusedBodies.refused(request, exception);
    const body = this.toBody(exception, requestId);
    recordRefusalReason(
      response,
      exception instanceof GatewayError ? exception.refusalReason : (STATUS_CODES[body.statusCode] ?? 'Error'),
    );
    // Nest's 404 quotes the whole URL; a key put in a query string by mistake must not come back.
    if (body.statusCode === 404) body.message = `Cannot ${request.method} ${request.path}`;

    if (exception instanceof GatewayError && exception.details.retryAfterSeconds !== undefined) {
      response.setHeader('Retry-After', String(exception.details.retryAfterSeconds));
    }
    if (body.statusCode === 401) response.setHeader('WWW-Authenticate', 'Bearer');
    if (response.headersSent) {
      response.end();
      return;
    }
    this.bodies.write(response, body);
  }

  private toBody(exception: unknown, requestId: string): ErrorBody {
    if (exception instanceof GatewayError) {
      const { zegoCode, zegoRequestId, fieldErrors, moreFieldErrors } = exception.details;
      return {
        ...shape(exception.status, exception.publicMessage, requestId),
        ...(fieldErrors !== undefined && { errors: fieldErrors }),
        ...(moreFieldErrors !== undefined && { moreErrors: moreFieldErrors }),
        ...(zegoCode !== undefined && { zegoCode }),
        ...(zegoRequestId !== undefined && { zegoRequestId }),
      };
    }
    if (exception instanceof HttpException) {
      return shape(exception.getStatus(), httpExceptionMessage(exception), requestId);
    }
    this.logger.error(
      `Unhandled error (request ${requestId})`,
      exception instanceof Error ? exception.stack : String(exception),
    );
    return shape(500, 'Internal error', requestId);
  }
}

function shape(statusCode: number, message: string, requestId: string): ErrorBody {
  return { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message, requestId };
}

function httpExceptionMessage(exception: HttpException): string {
  const response = exception.getResponse();
  if (typeof response === 'string') return response;
  const message = (response as { message?: unknown }).message;
  if (Array.isArray(message)) return message.join('; ');
  // Whatever a handler put there, in its string form (never as JSON: it could carry anything).
  const text: unknown = message ?? exception.message;
  return String(text);
}
