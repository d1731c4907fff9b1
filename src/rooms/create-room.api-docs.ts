import { applyDecorators } from '@nestjs/common';
import { ApiCreatedResponse, ApiHeader, ApiOperation, ApiResponse } from '@nestjs/swagger';
import { ErrorBodyDto } from '../http/error-body.dto.js';
import { RATE_LIMIT_HEADERS, REQUEST_ID_HEADER, RETRY_AFTER, errorResponse } from './api-responses.js';
import { RoomCreatedDto } from './dto/room-created.dto.js';

/** The OpenAPI description of POST /rooms: every answer the README's table promises. */
export function CreateRoomApiDocs(): MethodDecorator {
  return applyDecorators(
    ApiOperation({
      operationId: 'createRoom',
      summary: 'Create a ZEGOCLOUD ZIM room',
      description:
        "Validates the body against the vendor's CreateRoom rules (a bad request never reaches the vendor), " +
        'then creates the room with a signed vendor call. Send the body as `application/json`, without ' +
        '`Content-Encoding`, at most 64 KiB. Unknown fields, `null` for an optional field, numbers given as ' +
        'strings and invalid Unicode are refused. Every error has the same shape (ErrorBody). A 504 means ' +
        'the room may or may not exist: retrying with the same roomId is safe, and a 409 then means the ' +
        'first call created it.',
    }),
    ApiHeader({
      name: 'X-Request-Id',
      required: false,
      description:
        'Your id for this request, echoed on the response and in the logs: kept when it is 1-128 characters ' +
        'from `A-Z a-z 0-9 . _ : -`, replaced by a new UUID otherwise (never refused).',
      schema: { type: 'string', maxLength: 128 },
    }),
    ApiHeader({
      name: 'Idempotency-Key',
      required: false,
      description:
        'Makes retries safe: 1-255 printable ASCII characters without spaces, unique per intended room, ' +
        'scoped to your API key. A repeat with the same key and body gets the first final answer again ' +
        '(`Idempotent-Replayed: true`) without a second vendor call; stored are 201 and the vendor\'s 400, ' +
        '409 and 422, for `IDEMPOTENCY_TTL_S` (default 24 h). After a 504 a repeat calls the vendor again ' +
        'and answers 201 with `recovered: true` when the first attempt had created the room. A malformed ' +
        'key is a 400.',
      schema: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7E]+$' },
    }),
    ApiHeader({
      name: 'X-Priority',
      required: false,
      description:
        'The level this request waits at for the shared vendor budget: `batch` lowers it below your ' +
        "client's level (background work: it gets what interactive work leaves, plus a guaranteed minimum " +
        'share, and may wait longer for a slot); `interactive` keeps your client\'s level and never raises ' +
        'a batch client. Any other value is a 400 naming the header.',
      schema: { type: 'string', enum: ['interactive', 'batch'] },
    }),
    ApiCreatedResponse({
      description:
        'Room created. A replay under an Idempotency-Key carries `Idempotent-Replayed: true`; a retry after ' +
        'a 504, or after a connection reset, that found the room created carries `recovered: true`.',
      type: RoomCreatedDto,
      headers: {
        ...REQUEST_ID_HEADER,
        ...RATE_LIMIT_HEADERS,
        'Idempotent-Replayed': {
          description: '`true` when this is the stored answer of an earlier request with the same Idempotency-Key.',
          schema: { type: 'string', enum: ['true'] },
        },
      },
    }),
    errorResponse(
      400,
      'Invalid body, malformed JSON, invalid UTF-8, or body not an object: `errors` names the offending fields ' +
        '(the first 20; the message counts the rest). An object of more than 32 keys, or more keys and array items ' +
        'in all than a valid body can hold, is refused as such before any field is checked. ' +
        'Also the vendor\'s `660000002` parameter error (with `zegoCode`), and a malformed Idempotency-Key or ' +
        'X-Priority (`errors` names the header).',
    ),
    ApiResponse({
      status: 401,
      description:
        'Missing or unknown API key; checked before anything else, the vendor is not called.',
      type: ErrorBodyDto,
      headers: {
        ...REQUEST_ID_HEADER,
        'WWW-Authenticate': { description: 'Always `Bearer`.', schema: { type: 'string', enum: ['Bearer'] } },
      },
    }),
    errorResponse(
      409,
      'The vendor\'s `660300014`: the room already exists. Or a request with the same Idempotency-Key is ' +
        'still in progress (with `Retry-After`).',
      RETRY_AFTER,
    ),
    errorResponse(413, 'Body over 64 KiB.'),
    errorResponse(415, 'Wrong content type (not `application/json`) or a compressed body (`Content-Encoding`).'),
    errorResponse(
      422,
      'The vendor\'s `660500002` / `660200001`: the operator (fromUserId) is not registered. Or the ' +
        'Idempotency-Key was already used with a different body.',
    ),
    ApiResponse({
      status: 429,
      description:
        "Too many requests, with `Retry-After`: the client's own quota (`CLIENT_RATE_LIMIT`) is spent " +
        "(checked right after the API key; no X-RateLimit-* headers then); or your client's fair share of the " +
        'vendor budget has no slot within `RATE_LIMIT_MAX_WAIT_MS` (`RATE_LIMIT_MAX_WAIT_MS_BATCH` for batch; ' +
        'the message names the share and when a slot is expected; the vendor is not called); or the vendor rate limited the call ' +
        '(`660300005`, `660300006`, `7`) after retries.',
      type: ErrorBodyDto,
      headers: { ...REQUEST_ID_HEADER, ...RATE_LIMIT_HEADERS, ...RETRY_AFTER },
    }),
    errorResponse(
      502,
      'The vendor rejected our signature, AppId, timestamp or app configuration (`3`, `100000000`-`100000017` ' +
        'but `100000015`; logged as a configuration error); or the vendor was unreachable (after retries), ' +
        'answered non-2xx, with a body that is not JSON, without a numeric `Code`, or with an unknown code.',
    ),
    errorResponse(
      503,
      'Redis is down and `RATE_LIMIT_ON_REDIS_DOWN=reject` (`Retry-After: 1`; the vendor is not called; ' +
        'also for a request with an Idempotency-Key, whose store is then unavailable); the ' +
        "vendor's `660300015` room quota is reached (no `Retry-After`); the vendor is busy (`1`, " +
        '`100000015`) after retries (with `Retry-After`); or the request used up `ZEGO_CALL_DEADLINE_MS` ' +
        'before the vendor could be called, e.g. on a slowly sent body (`Retry-After: 1`; nothing was sent).',
      RETRY_AFTER,
    ),
    errorResponse(
      504,
      'The vendor did not answer within `ZEGO_TIMEOUT_MS`, or what was left of the deadline ' +
        '(`ZEGO_CALL_DEADLINE_MS` from the request\'s arrival). Not retried: the room may or may not exist. ' +
        'Retrying with the same roomId is safe; a 409 on the retry means the first call created it.',
    ),
  );
}
