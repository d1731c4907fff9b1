/**
 * `call`'s answer, or a rejection once `ms` have passed: for reads whose waiting must stay bounded
 * even on a connection that would queue them (a readiness probe, a /metrics scrape, adding batch
 * rooms through BullMQ, which waits for a connection that is not up).
 */
export async function answerWithin<T>(ms: number, call: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([call, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
