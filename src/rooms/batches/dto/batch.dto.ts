import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { BATCH_ROOM_STATUSES } from '../room-batch.js';

/** The OpenAPI shape of a failed room's error (BatchRoomError). */
export class BatchRoomErrorDto {
  @ApiProperty({ type: 'integer', description: 'The status POST /rooms would have answered for this room.', example: 409 })
  statusCode!: number;

  @ApiProperty({ type: 'string', example: 'The room already exists' })
  message!: string;

  @ApiPropertyOptional({ type: 'integer', description: "The vendor's Code, when the vendor answered.", example: 660300014 })
  zegoCode?: number;
}

/** The OpenAPI shape of one room of a batch (BatchRoomView). */
export class BatchRoomDto {
  @ApiProperty({ type: 'string', example: 'term-2027-class-12' })
  roomId!: string;

  @ApiProperty({ type: 'string', enum: [...BATCH_ROOM_STATUSES] })
  status!: string;

  @ApiPropertyOptional({ type: 'integer', description: 'As on a 201 from POST /rooms (created rooms).' })
  attributeSeq?: number;

  @ApiPropertyOptional({ type: 'string', description: "ZEGOCLOUD's RequestId of the call that created or refused the room." })
  zegoRequestId?: string;

  @ApiPropertyOptional({
    type: 'boolean',
    description: 'Present (true) when an attempt whose answer was lost (a timeout, a reset, a replica that died) had created the room.',
  })
  recovered?: boolean;

  @ApiPropertyOptional({ type: BatchRoomErrorDto, description: 'Why a failed room failed.' })
  error?: BatchRoomErrorDto;
}

/** The OpenAPI shape of a batch without its rooms: the 202 of POST /rooms/batches (BatchSummary). */
export class BatchSummaryDto {
  @ApiProperty({ type: 'string', format: 'uuid' })
  batchId!: string;

  @ApiProperty({
    type: 'string',
    enum: ['queued', 'running', 'done', 'cancelled'],
    description: '`queued`: no room begun; `running`: rooms being created; `done`: every room ended; `cancelled`: cancelled by its client.',
  })
  status!: string;

  @ApiProperty({ type: 'integer' })
  total!: number;

  @ApiProperty({ type: 'integer' })
  created!: number;

  @ApiProperty({ type: 'integer' })
  failed!: number;

  @ApiProperty({ type: 'integer', description: 'Rooms cancelled before they were sent.' })
  cancelled!: number;

  @ApiProperty({ type: 'integer', description: 'Rooms not yet ended (waiting, or on their way).' })
  pending!: number;

  @ApiProperty({ type: 'string', format: 'date-time' })
  createdAt!: string;

  @ApiPropertyOptional({ type: 'string', format: 'date-time', description: 'When the last room ended.' })
  finishedAt?: string;
}

/** The OpenAPI shape of GET and DELETE /rooms/batches/{batchId}: the batch and one page of its rooms. */
export class BatchDto extends BatchSummaryDto {
  @ApiProperty({ type: [BatchRoomDto], description: 'One page of rooms, in the order submitted.' })
  rooms!: BatchRoomDto[];

  @ApiPropertyOptional({ type: 'string', description: 'Pass as `cursor` for the next page; absent on the last page.' })
  nextCursor?: string;
}
