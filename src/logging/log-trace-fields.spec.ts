import { afterAll, describe, expect, it } from '@jest/globals';
import { trace } from '@opentelemetry/api';
import { installInMemoryTracing } from '../../test/support/in-memory-tracing.js';
import { MemoryDestination } from '../../test/support/memory-log-destination.js';
import { inSpan } from '../tracing/gateway-tracer.js';
import { createPino } from './create-logger.js';
import { LogSanitiser } from './log-sanitiser.js';

const tracing = installInMemoryTracing();
afterAll(() => tracing.uninstall());

function logger(traceIds: boolean): { log: ReturnType<typeof createPino>; destination: MemoryDestination } {
  const destination = new MemoryDestination();
  return { log: createPino({ level: 'info', sanitiser: new LogSanitiser(), destination, traceIds }), destination };
}

describe('log lines and traces', () => {
  it('with tracing on, a line written inside a span carries its trace_id and span_id, a line outside none', async () => {
    const { log, destination } = logger(true);
    let ids = { traceId: '', spanId: '' };
    await inSpan('request', {}, () => {
      ids = trace.getActiveSpan()!.spanContext();
      log.child({ context: 'RequestLog' }).info({ status: 201 }, 'inside');
      return Promise.resolve();
    });
    log.info('outside');
    const [inside, outside] = destination.lines;
    expect(inside).toMatchObject({ trace_id: ids.traceId, span_id: ids.spanId, context: 'RequestLog', status: 201, message: 'inside' });
    expect(outside).not.toHaveProperty('trace_id');
    expect(outside).not.toHaveProperty('span_id');
  });

  it('with tracing off, no line looks for a span', async () => {
    const { log, destination } = logger(false);
    await inSpan('request', {}, () => Promise.resolve(log.info('inside')));
    expect(destination.lines[0]).not.toHaveProperty('trace_id');
  });
});
