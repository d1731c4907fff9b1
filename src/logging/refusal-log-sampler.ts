/** One kind of refusal: whose, which status, and why (a short, stable phrase). */
export interface RefusalKind {
  /** The authenticated client, absent before authentication. */
  client?: string;
  status: number;
  reason: string;
}

/** The refusals of one kind in one interval, of which only the first was logged in full. */
export interface RefusalSummary extends RefusalKind {
  count: number;
  intervalMs: number;
}

interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const unrefTimers: Timers = {
  setTimeout: (callback, ms) => setTimeout(callback, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * Keeps a refusal storm from becoming a log storm: the first refusal of a kind in an interval is
 * logged in full, the rest are counted and reported in one summary line when the interval ends.
 * An interval opens with the first refusal after a quiet one, so an idle gateway arms no timer.
 * Kinds are few (clients x statuses x reasons), and forgotten at the end of every interval.
 */
export class RefusalLogSampler {
  private readonly counts = new Map<string, { kind: RefusalKind; count: number }>();
  private timer: unknown;

  constructor(
    private readonly summarise: (summary: RefusalSummary) => void,
    readonly intervalMs = 1000,
    private readonly timers: Timers = unrefTimers,
  ) {}

  /** Counts the refusal; true when its line is to be written in full (the first of its kind this interval). */
  takeLine(kind: RefusalKind): boolean {
    const id = `${kind.client ?? ''}\u0000${kind.status}\u0000${kind.reason}`;
    const seen = this.counts.get(id);
    if (seen) {
      seen.count++;
      return false;
    }
    this.counts.set(id, { kind, count: 1 });
    this.timer ??= this.timers.setTimeout(() => this.flush(), this.intervalMs);
    return true;
  }

  /** Reports every kind refused more than once since the interval opened, and closes it. */
  flush(): void {
    if (this.timer !== undefined) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    const ended = [...this.counts.values()];
    this.counts.clear();
    for (const { kind, count } of ended) {
      if (count > 1) this.summarise({ ...kind, count, intervalMs: this.intervalMs });
    }
  }
}
