import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsString, MaxLength, ValidateNested } from 'class-validator';
import { CreateRoomDto } from '../../dto/create-room.dto.js';
import { OptionalField } from '../../validation/optional-field.js';
import { BATCH_ROOMS_CEILING } from '../batches.settings.js';

/** Body of POST /rooms/batches: rooms as POST /rooms takes them, and where to report the end. */
export class CreateRoomBatchDto {
  @ApiProperty({
    type: [CreateRoomDto],
    minItems: 1,
    description:
      'The rooms to create, each exactly as POST /rooms takes it: 1 to BATCH_MAX_ROOMS (1000 unless ' +
      'configured) rooms, room ids unique within the batch. One invalid room refuses the whole batch.',
  })
  @IsArray()
  // The configured maximum (at most this ceiling) is checked after; this one stops a huge list before each room is validated.
  @ArrayMinSize(1)
  @ArrayMaxSize(BATCH_ROOMS_CEILING)
  @ValidateNested({ each: true })
  @Type(() => CreateRoomDto)
  rooms!: CreateRoomDto[];

  @ApiPropertyOptional({
    type: 'string',
    format: 'uri',
    maxLength: 2048,
    description:
      'Where to POST the final batch (without its rooms) once it ends, signed with ' +
      '`X-Signature: sha256=<hex HMAC-SHA256 of the body>`; retried with backoff for up to an hour. ' +
      'Its host must be listed in BATCH_CALLBACK_HOSTS (none by default: callbacks off).',
    example: 'https://events.internal.example/rooms-ready',
  })
  @OptionalField()
  @IsString()
  @MaxLength(2048)
  callbackUrl?: string;
}
