import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsArray, IsInt, IsString, Max, Min, ValidateNested } from 'class-validator';
import { ZIM_LIMITS } from '../../zego/zim-limits.js';
import { ValidOperatorId } from '../validation/operator-id.rule.js';
import { OptionalField } from '../validation/optional-field.js';
import { ValidRoomAttributes } from '../validation/room-attributes.rules.js';
import { Utf8ByteLength } from '../validation/utf8-byte-length.js';
import { IsZimId } from '../validation/zim-id.js';
import { RoomAttributeDto } from './room-attribute.dto.js';

/** The OpenAPI description of a vendor id (roomId, fromUserId): the same rule IsZimId checks. */
const ZIM_ID_SCHEMA = {
  type: 'string',
  minLength: 1,
  maxLength: ZIM_LIMITS.idMaxLength,
  pattern: ZIM_LIMITS.idPattern.source,
} as const;

/** Body of POST /rooms: the vendor's CreateRoom rules, checked before any vendor call. */
export class CreateRoomDto {
  @ApiProperty({
    ...ZIM_ID_SCHEMA,
    description: `The room's id: ${ZIM_LIMITS.idAllowedDescription}.`,
    example: 'room-42',
  })
  @IsString()
  @IsZimId()
  roomId!: string;

  /** The operator user; falls back to ZEGO_DEFAULT_FROM_USER_ID. */
  @ApiPropertyOptional({
    ...ZIM_ID_SCHEMA,
    description:
      `The operator user (the vendor's FromUserId; it does not join the room): ${ZIM_LIMITS.idAllowedDescription}. ` +
      'Must be registered with ZEGOCLOUD (otherwise 422). Required unless the gateway has a default ' +
      'operator (ZEGO_DEFAULT_FROM_USER_ID), which is used when it is left out.',
    example: 'ops-bot',
  })
  @ValidOperatorId()
  fromUserId?: string;

  @ApiPropertyOptional({
    type: 'string',
    maxLength: ZIM_LIMITS.roomNameMaxBytes,
    description:
      `The room's name: valid Unicode text of at most ${ZIM_LIMITS.roomNameMaxBytes} UTF-8 **bytes**, not ` +
      'characters (21 CJK characters, 32 accented Latin ones). maxLength is only the character bound ' +
      'that follows from it.',
    example: 'Design review',
  })
  @OptionalField()
  @IsString()
  @Utf8ByteLength(0, ZIM_LIMITS.roomNameMaxBytes)
  roomName?: string;

  /** Seconds an empty room lives on. */
  @ApiPropertyOptional({
    type: 'integer',
    minimum: 0,
    maximum: ZIM_LIMITS.destroyDelayTimeMaxSeconds,
    description:
      'Whole seconds an empty room lives on before the vendor destroys it. A JSON number: "300" is refused.',
    example: 300,
  })
  @OptionalField()
  @IsInt()
  @Min(0)
  @Max(ZIM_LIMITS.destroyDelayTimeMaxSeconds)
  destroyDelayTime?: number;

  @ApiPropertyOptional({
    type: () => RoomAttributeDto,
    isArray: true,
    maxItems: ZIM_LIMITS.defaultMaxAttributes,
    description:
      `Custom room attributes: at most ZEGO_MAX_ROOM_ATTRIBUTES items (default ${ZIM_LIMITS.defaultMaxAttributes}; ` +
      "maxItems shows this gateway's setting), with unique keys (case-sensitive); all keys and values " +
      `together at most ${ZIM_LIMITS.attributesTotalMaxBytes} UTF-8 bytes.`,
    example: [{ key: 'topic', value: 'q3', autoDelete: true }],
  })
  @OptionalField()
  @IsArray()
  @ValidRoomAttributes()
  @ValidateNested({ each: true })
  @Type(() => RoomAttributeDto)
  attributes?: RoomAttributeDto[];
}
