/**
 * The last few hundred durations of one kind (a connection's set-up, the vendor's answer), so the
 * pool can size itself from what the network does now rather than from a guess.
 */
export class RecentDurations {
  private readonly samples: number[] = [];
  private next = 0;
  private sorted?: number[];

  constructor(private readonly capacity = 256) {}

  get count(): number {
    return this.samples.length;
  }

  add(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    if (this.samples.length < this.capacity) this.samples.push(ms);
    else this.samples[this.next] = ms;
    this.next = (this.next + 1) % this.capacity;
    this.sorted = undefined;
  }

  /** The q-quantile (0..1) of the recent samples; undefined before the first one. */
  quantile(q: number): number | undefined {
    if (this.samples.length === 0) return undefined;
    this.sorted ??= [...this.samples].sort((a, b) => a - b);
    const index = Math.min(this.sorted.length - 1, Math.max(0, Math.ceil(q * this.sorted.length) - 1));
    return this.sorted[index]!;
  }
}
