import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import type { ErrorBody, FieldError } from './error-body.js';

/*
 * OpenAPI documentation of the one error shape (error-body.ts), as HttpExceptionFilter renders
 * it. Documentation only: `implements` keeps these classes in step with the interfaces.
 */

/** One offending field of a validation failure. */
export class FieldErrorDto implements FieldError {
  @ApiProperty({
    type: 'string',
    description: 'The path a client would use: `roomName`, `attributes[1].key`, or `body` for the body as a whole.',
    example: 'roomName',
  })
  field!: string;

  @ApiProperty({
    type: 'string',
    description: 'Why it was refused. Never quotes the value sent.',
    example: 'must be valid text of at most 64 UTF-8 bytes',
  })
  reason!: string;
}

/** The body of every error response. */
export class ErrorBodyDto implements ErrorBody {
  @ApiProperty({ type: 'integer', description: 'The HTTP status, repeated.', example: 400 })
  statusCode!: number;

  @ApiProperty({ type: 'string', description: "The status's reason phrase.", example: 'Bad Request' })
  error!: string;

  @ApiProperty({
    type: 'string',
    description:
      'What went wrong, for people; on a validation failure each listed `field: reason`, joined by "; ", ' +
      'then "… and N more" when more fields were refused than `errors` lists.',
    example: 'roomName: must be valid text of at most 64 UTF-8 bytes',
  })
  message!: string;

  @ApiProperty({
    type: 'string',
    description: 'The X-Request-Id of the request: quote it when asking the platform team.',
    example: '9b2f7c1e-3d4a-4f6b-8e21-0c5d7a9e4b13',
  })
  requestId!: string;

  @ApiPropertyOptional({
    type: () => FieldErrorDto,
    isArray: true,
    description:
      'On a validation failure (400): the offending fields and why, at most 20 (`moreErrors` counts the rest); ' +
      'on a 422 for an Idempotency-Key reused ' +
      'with another body: the header.',
  })
  errors?: FieldErrorDto[];

  @ApiPropertyOptional({
    type: 'integer',
    minimum: 1,
    description: 'How many more fields were refused than `errors` lists (a body of thousands of bad keys gets a short answer).',
    example: 8271,
  })
  moreErrors?: number;

  @ApiPropertyOptional({
    type: 'integer',
    description: "The vendor's return code, when the vendor answered.",
    example: 660300014,
  })
  zegoCode?: number;

  @ApiPropertyOptional({
    type: 'string',
    description: "The vendor's RequestId, when the vendor answered: quote it to ZEGOCLOUD support.",
    example: '3506410046318396581',
  })
  zegoRequestId?: string;
}
