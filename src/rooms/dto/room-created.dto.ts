import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

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

  /** Set (true) only when an Idempotency-Key retry found the room its earlier, timed-out attempt created. */
  @ApiPropertyOptional({
    type: 'boolean',
    description:
      'Present (true) only when the vendor answered that the room already exists after an attempt that may ' +
      'have created it: a retry under the same Idempotency-Key after a 504, or the gateway\'s own retry after ' +
      'a connection reset. That attempt is taken to have created the room. `zegoRequestId` is then the ' +
      "RequestId of the retry's vendor answer, and `attributeSeq` is the count the creation set (one per " +
      'attribute sent), not a figure the vendor reported.',
    example: true,
  })
  recovered?: boolean;
}
