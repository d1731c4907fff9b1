import type { ArgumentMetadata, PipeTransform } from '@nestjs/common';
import { RequestValidationError } from '../http/request-validation.error.js';
import { ATTR, inSpan, SPAN } from './gateway-tracer.js';

/**
 * A request body's validation as a span of its own, around the pipe that validates it: its
 * outcome, and how many fields were refused. The handler's other parameters pass untraced.
 */
export class TracedValidationPipe implements PipeTransform {
  constructor(private readonly pipe: PipeTransform) {}

  transform(value: unknown, metadata: ArgumentMetadata): unknown {
    if (metadata.type !== 'body') return this.pipe.transform(value, metadata);
    return inSpan(SPAN.validation, {}, async (span) => {
      try {
        const valid: unknown = await this.pipe.transform(value, metadata);
        span.setAttribute(ATTR.outcome, 'valid');
        return valid;
      } catch (error) {
        if (error instanceof RequestValidationError) {
          span.setAttributes({ [ATTR.outcome]: 'invalid', [ATTR.invalidFields]: error.fieldErrors.length });
        }
        throw error;
      }
    });
  }
}
