/*
 * How many keys (object keys plus array items) the rooms' bodies may hold once parsed: a body
 * beyond is refused before validation (JsonBodyGuard). Derived from the largest valid body, so
 * the caps follow ZEGO_MAX_ROOM_ATTRIBUTES and BATCH_MAX_ROOMS.
 */

/** The largest valid POST /rooms body: its 5 fields, and each attribute an item of 3 fields. */
export function largestRoomBodyKeys(maxAttributes: number): number {
  return 5 + maxAttributes * (1 + 3);
}

/** The largest valid POST /rooms/batches body: `rooms` and `callbackUrl`, and each room an item. */
export function largestBatchBodyKeys(maxRooms: number, maxAttributes: number): number {
  return 2 + maxRooms * (1 + largestRoomBodyKeys(maxAttributes));
}

/**
 * The cap for a body whose largest valid form has `largestValidKeys`: twice that, so that a body
 * with a few mistakes still reaches validation, which names each; never below 64, for the same
 * reason when the valid form is tiny.
 */
export function bodyKeyCap(largestValidKeys: number): number {
  return Math.max(64, 2 * largestValidKeys);
}
