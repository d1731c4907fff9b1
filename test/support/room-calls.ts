/**
 * What the fake vendor's record says of one room: the calls that carried its RoomId, and the
 * answers to those the vendor acted on.
 */
import { ZimCode, type ReceivedCall } from '../fake-zim/fake-zim-server.js';

/** The calls for `roomId`, in the order they arrived. */
export function callsForRoom(calls: readonly ReceivedCall[], roomId: string): ReceivedCall[] {
  return calls.filter((call) => (call.body as { RoomId?: string } | undefined)?.RoomId === roomId);
}

/**
 * The vendor's answers to the calls for `roomId` that it acted on: a room sent twice shows a second
 * answer (`room exists`). A call refused at the door for frequency did nothing and is tried again;
 * the fake stamps arrivals on the test process's event loop, which a starved machine can bunch (the
 * cap is proven on the kernel's clock in test/fleet).
 */
export function actedAnswersFor(calls: readonly ReceivedCall[], roomId: string): Array<number | null> {
  return callsForRoom(calls, roomId)
    .filter((call) => call.code !== ZimCode.frequencyLimit)
    .map((call) => call.code);
}
