import { describe, expect, it } from '@jest/globals';
import { MAX_VENDOR_ATTEMPT_STAGES, REQUEST_STAGES, vendorAttemptStage } from './request-stage.js';

describe('request stages', () => {
  it('are a small fixed set of distinct names: a metric label', () => {
    expect(new Set(REQUEST_STAGES).size).toBe(REQUEST_STAGES.length);
    expect(REQUEST_STAGES.length).toBeLessThanOrEqual(20);
    expect(REQUEST_STAGES).toEqual(
      expect.arrayContaining(['request body', 'handler', 'client quota', 'idempotency key', 'outbound slot', 'vendor attempt 1', 'retry backoff']),
    );
  });

  it('name each vendor attempt up to the most ZEGO_MAX_ATTEMPTS allows, and never more names than that', () => {
    expect(vendorAttemptStage(2)).toBe('vendor attempt 2');
    expect(vendorAttemptStage(MAX_VENDOR_ATTEMPT_STAGES)).toBe(`vendor attempt ${MAX_VENDOR_ATTEMPT_STAGES}`);
    expect(vendorAttemptStage(MAX_VENDOR_ATTEMPT_STAGES + 5)).toBe(`vendor attempt ${MAX_VENDOR_ATTEMPT_STAGES}`);
    for (let attempt = 1; attempt <= MAX_VENDOR_ATTEMPT_STAGES + 1; attempt++) {
      expect(REQUEST_STAGES).toContain(vendorAttemptStage(attempt));
    }
  });
});
