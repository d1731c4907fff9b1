import { describe, expect, it } from '@jest/globals';
import { jsonBodyBoundsBreach } from '../http/json-body-bounds.js';
import { bodyKeyCap, largestBatchBodyKeys, largestRoomBodyKeys } from './body-key-caps.js';

/** A room body with every field and `attributes` attributes of every field. */
const fullRoom = (attributes: number, roomId = 'r'): object => ({
  roomId,
  fromUserId: 'ops',
  roomName: 'n',
  destroyDelayTime: 300,
  attributes: Array.from({ length: attributes }, (_, i) => ({ key: `k${i}`, value: 'v', autoDelete: true })),
});

describe('body key caps', () => {
  it.each([0, 1, 20, 1000])('the largest valid room body with %i attributes holds exactly largestRoomBodyKeys', (attributes) => {
    const largest = largestRoomBodyKeys(attributes);
    expect(jsonBodyBoundsBreach(fullRoom(attributes), largest)).toBeUndefined();
    expect(jsonBodyBoundsBreach(fullRoom(attributes), largest - 1)?.field).toBe('body');
  });

  it('the largest valid batch body holds exactly largestBatchBodyKeys', () => {
    const batch = { rooms: Array.from({ length: 50 }, (_, i) => fullRoom(20, `r${i}`)), callbackUrl: 'https://hooks.example/done' };
    const largest = largestBatchBodyKeys(50, 20);
    expect(jsonBodyBoundsBreach(batch, largest)).toBeUndefined();
    expect(jsonBodyBoundsBreach(batch, largest - 1)?.field).toBe('body');
  });

  it('caps at twice the largest valid body, and at least 64', () => {
    expect(bodyKeyCap(largestRoomBodyKeys(20))).toBe(170);
    expect(bodyKeyCap(largestRoomBodyKeys(0))).toBe(64);
  });
});
