import { type Context, context } from '@opentelemetry/api';

/**
 * The SDK the preload started, as the running application sees it (the same module instance: both
 * import it by the same URL): whether it runs, how to keep a call out of it, and how to send the
 * spans still queued before the process exits. With tracing off nothing is registered here and
 * the application never loads the SDK's packages.
 */
export interface RunningTracing {
  /** Flushes the queued spans and stops the SDK. */
  shutdown(): Promise<void>;
  /** `context` with tracing suppressed: the instrumentations neither record nor inject headers in it. */
  suppress(context: Context): Context;
}

let running: RunningTracing | undefined;

/** Spans still unsent this long after shutdown began are dropped: the pod's grace period is counted in seconds. */
export const TRACING_SHUTDOWN_BOUND_MS = 2000;

export function onTracingStarted(started: RunningTracing): void {
  running = started;
}

/** True once the preload started the SDK. */
export function tracingRunning(): boolean {
  return running !== undefined;
}

/**
 * Runs `work` unseen by the instrumentations: an outgoing request made in it gets no span and no
 * `traceparent`, `tracestate` or `baggage` header (a third party's call: the vendor).
 */
export function untraced<T>(work: () => T): T {
  return running === undefined ? work() : context.with(running.suppress(context.active()), work);
}

/** Flushes and stops the SDK, within TRACING_SHUTDOWN_BOUND_MS; does nothing when tracing is off. */
export async function shutDownTracing(): Promise<void> {
  if (!running) return;
  const stopping = running;
  running = undefined;
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, TRACING_SHUTDOWN_BOUND_MS);
  });
  try {
    await Promise.race([stopping.shutdown().catch(() => undefined), bound]);
  } finally {
    clearTimeout(timer);
  }
}
