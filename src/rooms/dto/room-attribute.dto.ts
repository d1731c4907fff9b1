import { IsBoolean, IsString } from 'class-validator';
import { ZIM_LIMITS } from '../../zego/zim-limits.js';
import { OptionalField } from '../validation/optional-field.js';
import { Utf8ByteLength } from '../validation/utf8-byte-length.js';

export class RoomAttributeDto {
  @IsString()
  @Utf8ByteLength(1, ZIM_LIMITS.attributeKeyMaxBytes)
  key!: string;

  @IsString()
  @Utf8ByteLength(0, ZIM_LIMITS.attributeValueMaxBytes)
  value!: string;

  /** Delete the attribute when the user who set it leaves; sent to the vendor as 0/1. */
  @OptionalField()
  @IsBoolean()
  autoDelete?: boolean;
}
