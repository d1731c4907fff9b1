import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from '@jest/globals';
import { markBodyRefusal, REMEMBERED_BODIES, REMEMBERED_BODY_MAX_BYTES, RefusedBodies } from './refused-bodies.js';
import { RequestValidationError } from './request-validation.error.js';

const request = (): IncomingMessage => ({}) as IncomingMessage;
const body = (text: string): Buffer => Buffer.from(text, 'utf8');
/** What the validation pipe throws for a body. */
function refusal(field: string): RequestValidationError {
  const error = new RequestValidationError([{ field, reason: 'must be a string' }]);
  markBodyRefusal(error);
  return error;
}

describe('RefusedBodies', () => {
  it('recalls a refused body by its exact bytes on its route, and nothing else', () => {
    const bodies = new RefusedBodies();
    const req = request();
    const refused = refusal('roomName');
    bodies.consider(req, 'POST /rooms', body('{"roomName":5}'));
    bodies.refused(req, refused);
    expect(bodies.recall('POST /rooms', body('{"roomName":5}'))).toBe(refused);
    expect(bodies.recall('POST /rooms', body('{"roomName":5} '))).toBeUndefined();
    expect(bodies.recall('POST /rooms/batches', body('{"roomName":5}'))).toBeUndefined();
  });

  it('remembers only what validation refused, and only once offered', () => {
    const bodies = new RefusedBodies();
    const passed = request();
    bodies.consider(passed, 'POST /rooms', body('{"roomId":"ok"}'));
    expect(bodies.recall('POST /rooms', body('{"roomId":"ok"}'))).toBeUndefined();

    const neverOffered = request();
    bodies.refused(neverOffered, refusal('body'));
    expect(bodies.recall('POST /rooms', body(''))).toBeUndefined();
  });

  it('forgets a valid body refused for something else (a bad Idempotency-Key header)', () => {
    const bodies = new RefusedBodies();
    const req = request();
    bodies.consider(req, 'POST /rooms', body('{"roomId":"ok"}'));
    bodies.refused(req, new RequestValidationError([{ field: 'Idempotency-Key', reason: 'must be 1-64 characters' }]));
    expect(bodies.recall('POST /rooms', body('{"roomId":"ok"}'))).toBeUndefined();
  });

  it('leaves large bodies alone', () => {
    const bodies = new RefusedBodies();
    const req = request();
    const large = body(`{"roomName":"${'x'.repeat(REMEMBERED_BODY_MAX_BYTES)}"}`);
    bodies.consider(req, 'POST /rooms', large);
    bodies.refused(req, refusal('roomName'));
    expect(bodies.recall('POST /rooms', large)).toBeUndefined();
  });

  it('keeps at most REMEMBERED_BODIES, forgetting the least recently seen first', () => {
    const bodies = new RefusedBodies();
    const refuse = (i: number): void => {
      const req = request();
      bodies.consider(req, 'POST /rooms', body(`{"n":${i}}`));
      bodies.refused(req, refusal(`n${i}`));
    };
    for (let i = 0; i < REMEMBERED_BODIES; i++) refuse(i);
    // Body 0 is seen again, so body 1 is now the oldest.
    expect(bodies.recall('POST /rooms', body('{"n":0}'))).toBeDefined();
    refuse(REMEMBERED_BODIES);

    expect(bodies.recall('POST /rooms', body('{"n":1}'))).toBeUndefined();
    expect(bodies.recall('POST /rooms', body('{"n":0}'))).toBeDefined();
    expect(bodies.recall('POST /rooms', body(`{"n":${REMEMBERED_BODIES}}`))).toBeDefined();
  });
});
