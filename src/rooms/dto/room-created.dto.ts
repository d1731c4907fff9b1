/** Body of a 201 from POST /rooms. */
export class RoomCreatedDto {
  roomId!: string;
  /** The vendor's attribute change counter after creation. */
  attributeSeq!: number;
  /** The vendor's RequestId, for support tickets with ZEGOCLOUD. */
  zegoRequestId!: string;
}
