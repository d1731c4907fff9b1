/**
 * Keeps this process's event loop busy for `ms`, synchronously, as a burst of requests does (each
 * a chain of promises): what lies between a slot's check and Node's write of the request.
 */
export function keepEventLoopBusy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // spin: nothing else runs meanwhile
  }
}
