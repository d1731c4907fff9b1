import { ApiProperty } from '@nestjs/swagger';

/** Body of a 201 from POST /rooms. */
export class RoomCreatedDto {
  @ApiProperty({ type: 'string', description: 'The id of the room created, as sent.', example: 'room-42' })
  roomId!: string;

  /** The vendor's attribute change counter after creation. */
  @ApiProperty({
    type: 'integer',
    minimum: 0,
    description:
      "The vendor's attribute change counter after creation: one per attribute set (0 without attributes).",
    example: 1,
  })
  attributeSeq!: number;

  /** The vendor's RequestId, for support tickets with ZEGOCLOUD. */
  @ApiProperty({
    type: 'string',
    description: "ZEGOCLOUD's RequestId for the vendor call: quote it to ZEGOCLOUD support.",
    example: '3506410046318396581',
  })
  zegoRequestId!: string;
}
