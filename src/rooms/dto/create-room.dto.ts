import { Type } from 'class-transformer';
import { IsArray, IsInt, IsString, Max, Min, ValidateNested } from 'class-validator';
import { ZIM_LIMITS } from '../../zego/zim-limits.js';
import { ValidOperatorId } from '../validation/operator-id.rule.js';
import { OptionalField } from '../validation/optional-field.js';
import { ValidRoomAttributes } from '../validation/room-attributes.rules.js';
import { Utf8ByteLength } from '../validation/utf8-byte-length.js';
import { IsZimId } from '../validation/zim-id.js';
import { RoomAttributeDto } from './room-attribute.dto.js';

/** Body of POST /rooms: the vendor's CreateRoom rules, checked before any vendor call. */
export class CreateRoomDto {
  @IsString()
  @IsZimId()
  roomId!: string;

  /** The operator user; falls back to ZEGO_DEFAULT_FROM_USER_ID. */
  @ValidOperatorId()
  fromUserId?: string;

  @OptionalField()
  @IsString()
  @Utf8ByteLength(0, ZIM_LIMITS.roomNameMaxBytes)
  roomName?: string;

  /** Seconds an empty room lives on. */
  @OptionalField()
  @IsInt()
  @Min(0)
  @Max(ZIM_LIMITS.destroyDelayTimeMaxSeconds)
  destroyDelayTime?: number;

  @OptionalField()
  @IsArray()
  @ValidRoomAttributes()
  @ValidateNested({ each: true })
  @Type(() => RoomAttributeDto)
  attributes?: RoomAttributeDto[];
}
