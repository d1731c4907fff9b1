/**
 * How far one server clock drifts from ours at most, per millisecond (1000 ppm: ten times what
 * NTP slews a clock by, so a slewing Redis host stays inside the bounds).
 */
const MAX_DRIFT_PER_MS = 1e-3;

/**
 * Maps Redis server time (TIME, in ms) onto this process's monotonic clock, so that a slot reserved
 * in Redis time starts at the right local moment however late this process read the answer.
 *
 * Reading "the slot is `waitMs` after the moment the answer arrived" would shift every slot by the
 * time the answer spent in the socket and the event loop: a few milliseconds normally, tens while a
 * replica is busy, and the cap at the vendor's door has only the safety margin to absorb that.
 * Instead, each reply bounds the offset between the clocks: Redis read its clock at some local time
 * between sending the command and handling the answer. Bounds from successive replies are
 * intersected (NTP's reasoning, minus the network), so one quick round trip pins the offset for
 * every slow one that follows; when the intersection comes out empty, the server clock has stepped
 * (NTP, a failover to another host) and the latest bounds alone are kept.
 */
export class RedisClock {
  /** server − local lies in [lowest, highest]. */
  private lowest = Number.NEGATIVE_INFINITY;
  private highest = Number.POSITIVE_INFINITY;
  private observedAt = Number.NEGATIVE_INFINITY;

  /** Redis answered `serverMs` to a command sent at local `sentAt` and handled at `answeredAt`. */
  observe(serverMs: number, sentAt: number, answeredAt: number): void {
    const lowest = serverMs - answeredAt;
    const highest = serverMs - sentAt;
    const drift = (answeredAt - this.observedAt) * MAX_DRIFT_PER_MS;
    const kept = { lowest: Math.max(lowest, this.lowest - drift), highest: Math.min(highest, this.highest + drift) };
    if (kept.lowest <= kept.highest) {
      this.lowest = kept.lowest;
      this.highest = kept.highest;
    } else {
      this.lowest = lowest;
      this.highest = highest;
    }
    this.observedAt = answeredAt;
  }

  /** The local time at which the server clock reads `serverMs` (best estimate). */
  toLocal(serverMs: number): number {
    if (!Number.isFinite(this.lowest)) throw new Error('RedisClock.toLocal before any observation');
    return serverMs - (this.lowest + this.highest) / 2;
  }

}
