import { describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { currentRequestProgress, inRequestStage, RequestProgress, runWithRequestProgress } from './request-progress.js';

describe('RequestProgress', () => {
  it('has its deadline at its arrival plus its allowance, and starts in the gateway\'s own code', () => {
    const progress = new RequestProgress(1_000, 10_000);
    expect(progress.deadline).toBe(11_000);
    expect(progress.stage).toBe('handler');
  });

  it('names the stage entered, and goes back to the one before when left', () => {
    const progress = new RequestProgress(0, 1_000);
    const leaveSlot = progress.enter('outbound slot');
    expect(progress.stage).toBe('outbound slot');
    leaveSlot();
    expect(progress.stage).toBe('handler');
  });

  it('adds up the time spent in each stage, the one it is in included, to the request\'s age', () => {
    let now = 100;
    const progress = new RequestProgress(100, 1_000, () => now);
    now = 101;
    const leaveQuota = progress.enter('client quota');
    now = 103.5;
    leaveQuota();
    now = 104;
    const leaveSlot = progress.enter('outbound slot');
    now = 110;
    leaveSlot();
    const leaveAttempt = progress.enter('vendor attempt 1');
    now = 112;
    expect(progress.stageTimes()).toEqual({ handler: 1.5, 'client quota': 2.5, 'outbound slot': 6, 'vendor attempt 1': 2 });
    leaveAttempt();
    now = 113;
    expect(progress.stageTimes()).toEqual({ handler: 2.5, 'client quota': 2.5, 'outbound slot': 6, 'vendor attempt 1': 2 });
    expect(Object.values(progress.stageTimes()).reduce((a, b) => a + b)).toBe(now - progress.arrivedAt);
  });
});

describe('the request context', () => {
  it('carries the request\'s progress through awaits and timers, and nothing outside a request', async () => {
    const progress = new RequestProgress(0, 1_000);
    expect(currentRequestProgress()).toBeUndefined();
    const seen = await runWithRequestProgress(progress, async () => {
      await sleep(1);
      return currentRequestProgress();
    });
    expect(seen).toBe(progress);
    expect(currentRequestProgress()).toBeUndefined();
  });

  it('keeps concurrent requests apart', async () => {
    const first = new RequestProgress(0, 1_000);
    const second = new RequestProgress(0, 1_000);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const waiting = runWithRequestProgress(first, () => inRequestStage('idempotency key', () => held));
    await runWithRequestProgress(second, () => inRequestStage('outbound slot', async () => {
      expect(first.stage).toBe('idempotency key');
      expect(second.stage).toBe('outbound slot');
    }));
    expect(second.stage).toBe('handler');
    expect(first.stage).toBe('idempotency key');
    release();
    await waiting;
    expect(first.stage).toBe('handler');
  });
});

describe('inRequestStage', () => {
  it('names the stage while the work runs, and leaves it when the work fails too', async () => {
    const progress = new RequestProgress(0, 1_000);
    const during: string[] = [];
    await runWithRequestProgress(progress, async () => {
      await inRequestStage('client quota', async () => {
        during.push(progress.stage);
      });
      await expect(
        inRequestStage('vendor attempt 1', async () => {
          during.push(progress.stage);
          throw new Error('vendor went away');
        }),
      ).rejects.toThrow('vendor went away');
      // A throw before the first await is a failure of the work like any other.
      await expect(
        inRequestStage('retry backoff', () => {
          throw new Error('at once');
        }),
      ).rejects.toThrow('at once');
    });
    expect(during).toEqual(['client quota', 'vendor attempt 1']);
    expect(progress.stage).toBe('handler');
  });

  it('only runs the work outside a request', async () => {
    await expect(inRequestStage('outbound slot', async () => 'done')).resolves.toBe('done');
  });
});
