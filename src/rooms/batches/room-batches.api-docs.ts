import { applyDecorators } from '@nestjs/common';
import { ApiAcceptedResponse, ApiHeader, ApiOkResponse, ApiOperation, ApiParam, ApiQuery, ApiResponse } from '@nestjs/swagger';
import { ErrorBodyDto } from '../../http/error-body.dto.js';
import { RATE_LIMIT_HEADERS, REQUEST_ID_HEADER, RETRY_AFTER, errorResponse } from '../api-responses.js';
import { BATCH_ROOM_STATUSES } from './room-batch.js';
import { BatchDto, BatchSummaryDto } from './dto/batch.dto.js';

const UNAUTHORIZED = ApiResponse({
  status: 401,
  description: 'Missing or unknown API key; checked before anything else.',
  type: ErrorBodyDto,
  headers: { ...REQUEST_ID_HEADER, 'WWW-Authenticate': { description: 'Always `Bearer`.', schema: { type: 'string', enum: ['Bearer'] } } },
});

const QUOTA = errorResponse(429, "The client's own quota (`CLIENT_RATE_LIMIT`) is spent.", RETRY_AFTER);

const STORE_DOWN = errorResponse(
  503,
  'The batch store (Redis) is unavailable: batches need it, whatever `RATE_LIMIT_ON_REDIS_DOWN` says (`Retry-After: 1`).',
  RETRY_AFTER,
);

const NOT_FOUND = errorResponse(404, 'No such batch for this client: another client\'s batch is not found either.');

const BATCH_ID = ApiParam({ name: 'batchId', description: 'As in the 202 and its Location header.', schema: { type: 'string', format: 'uuid' } });

const PAGE_QUERY = [
  ApiQuery({ name: 'status', required: false, enum: [...BATCH_ROOM_STATUSES], description: 'Only rooms of this status.' }),
  ApiQuery({ name: 'cursor', required: false, type: 'string', description: '`nextCursor` of the previous page.' }),
  ApiQuery({ name: 'limit', required: false, schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 }, description: 'Rooms per page.' }),
];

export function SubmitBatchApiDocs(): MethodDecorator {
  return applyDecorators(
    ApiOperation({
      operationId: 'submitRoomBatch',
      summary: 'Create many rooms in the background',
      description:
        'Takes up to `BATCH_MAX_ROOMS` rooms (1000 unless configured), each validated exactly as on POST /rooms, ' +
        'and answers 202 at once. The rooms are kept in Redis (durable as Redis is: see the README) and created ' +
        "by every replica at `batch` priority under your client's fair share: your interactive requests come " +
        'first, other teams keep their shares, and an idle fleet gives the batch the whole budget. Each room is ' +
        'sent once; a room whose first attempt was ambiguous and that is then found existing is `created` with ' +
        '`recovered: true`, one this batch did not create is `failed` with statusCode 409. Body: at most ' +
        '`BATCH_BODY_LIMIT_BYTES` (4 MiB unless configured).',
    }),
    ApiHeader({
      name: 'Idempotency-Key',
      required: false,
      description: 'As on POST /rooms, scoped to your API key and this route: a repeat gets the same 202 and the same batch.',
      schema: { type: 'string', minLength: 1, maxLength: 255 },
    }),
    ApiAcceptedResponse({
      description: 'Batch accepted: every room pending.',
      type: BatchSummaryDto,
      headers: {
        ...REQUEST_ID_HEADER,
        ...RATE_LIMIT_HEADERS,
        Location: { description: '`/rooms/batches/<batchId>`', schema: { type: 'string' } },
      },
    }),
    errorResponse(
      400,
      'Invalid batch; nothing is queued. `errors` names each problem: `rooms[3].roomName` for a room, ' +
        '`rooms[5].roomId` for a room id repeated in the batch, `rooms` for too many rooms, `callbackUrl` for ' +
        'a callback host not in `BATCH_CALLBACK_HOSTS`; the first 20 of them, the message counts the rest. A body ' +
        'of more keys and array items than `BATCH_MAX_ROOMS` valid rooms can hold is refused as such, naming `body`.',
    ),
    UNAUTHORIZED,
    errorResponse(409, 'A request with the same Idempotency-Key is still in progress.', RETRY_AFTER),
    errorResponse(413, 'Body over `BATCH_BODY_LIMIT_BYTES`.'),
    errorResponse(422, 'The Idempotency-Key was already used with a different body.'),
    errorResponse(
      429,
      "The client's own quota is spent, or accepting the batch would leave the client more rooms not yet sent " +
        'than `BATCH_MAX_PENDING_ROOMS_PER_CLIENT` (10000 unless configured).',
      RETRY_AFTER,
    ),
    STORE_DOWN,
  );
}

/** GET and DELETE answer alike: the batch and a page of its rooms. */
function batchAnswerDocs(): MethodDecorator[] {
  return [
    BATCH_ID,
    ...PAGE_QUERY,
    ApiOkResponse({ type: BatchDto, headers: { ...REQUEST_ID_HEADER, ...RATE_LIMIT_HEADERS } }),
    errorResponse(400, '`status`, `cursor` or `limit` is not valid; `errors` names it.'),
    UNAUTHORIZED,
    NOT_FOUND,
    QUOTA,
    STORE_DOWN,
  ];
}

export function GetBatchApiDocs(): MethodDecorator {
  return applyDecorators(
    ApiOperation({
      operationId: 'getRoomBatch',
      summary: 'Read a batch and a page of its rooms',
      description: 'Counts, status and one page of rooms (100 unless `limit` says otherwise), optionally only rooms of one status.',
    }),
    ...batchAnswerDocs(),
  );
}

export function CancelBatchApiDocs(): MethodDecorator {
  return applyDecorators(
    ApiOperation({
      operationId: 'cancelRoomBatch',
      summary: 'Cancel the rooms of a batch not yet sent',
      description:
        'Rooms not yet sent end `cancelled`; rooms already on their way end as their vendor calls do. The batch ' +
        'is then `cancelled` (its callback, if any, is sent when nothing is left on its way). Cancelling an ' +
        'ended batch changes nothing.',
    }),
    ...batchAnswerDocs(),
  );
}
