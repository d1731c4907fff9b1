import { Counter, type Registry } from 'prom-client';

/**
 * A counter that follows a total its source keeps itself (a limiter's late slots, say), read at
 * each scrape: Prometheus gets only what was added since the last one.
 */
export function runningTotalCounter(options: { name: string; help: string; registers: Registry[]; read: () => number }): Counter {
  let reported = 0;
  const { read, ...counter } = options;
  return new Counter({
    ...counter,
    collect() {
      const total = read();
      this.inc(total - reported);
      reported = total;
    },
  });
}
