import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsString } from 'class-validator';
import { ZIM_LIMITS } from '../../zego/zim-limits.js';
import { OptionalField } from '../validation/optional-field.js';
import { Utf8ByteLength } from '../validation/utf8-byte-length.js';

export class RoomAttributeDto {
  @ApiProperty({
    type: 'string',
    minLength: 1,
    maxLength: ZIM_LIMITS.attributeKeyMaxBytes,
    description:
      `The attribute's key: valid Unicode text of 1 to ${ZIM_LIMITS.attributeKeyMaxBytes} UTF-8 bytes ` +
      '(not characters); unique within the room.',
    example: 'topic',
  })
  @IsString()
  @Utf8ByteLength(1, ZIM_LIMITS.attributeKeyMaxBytes)
  key!: string;

  @ApiProperty({
    type: 'string',
    maxLength: ZIM_LIMITS.attributeValueMaxBytes,
    description:
      `The attribute's value: valid Unicode text of at most ${ZIM_LIMITS.attributeValueMaxBytes} UTF-8 bytes ` +
      '(not characters); may be empty.',
    example: 'q3',
  })
  @IsString()
  @Utf8ByteLength(0, ZIM_LIMITS.attributeValueMaxBytes)
  value!: string;

  /** Delete the attribute when the user who set it leaves; sent to the vendor as 0/1. */
  @ApiPropertyOptional({
    type: 'boolean',
    description:
      'Delete the attribute when the user who set it leaves the room (sent to the vendor as 1/0). ' +
      'A JSON boolean: 1 and "true" are refused. Left out, nothing is sent.',
    example: true,
  })
  @OptionalField()
  @IsBoolean()
  autoDelete?: boolean;
}
