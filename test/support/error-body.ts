/**
 * The gateway's one error shape, checked the same way wherever a spec expects a refusal:
 * `{statusCode, error, message, requestId, errors?, zegoCode?, zegoRequestId?}` as JSON, its
 * requestId the X-Request-Id header, and the vendor's fields only when the vendor answered.
 */
import { expect } from '@jest/globals';
import { STATUS_CODES } from 'node:http';
import type { RecordedExchange } from './http-recorder.js';

const ERROR_FIELDS = ['statusCode', 'error', 'message', 'requestId', 'errors', 'moreErrors', 'zegoCode', 'zegoRequestId'];

export interface ExpectedErrorBody {
  /** The vendor answered with this Code: zegoCode is it and zegoRequestId is set. Without it, neither may be there. */
  zegoCode?: number;
  /** The body has no `errors` list (the vendor side never produces one; bad input may). */
  noFieldErrors?: boolean;
  /** The message is not empty. */
  messageNotEmpty?: boolean;
}

/** Asserts the error shape for `status`; returns the body for the spec's own checks. */
export function expectErrorBody(
  res: RecordedExchange,
  status: number,
  expected: ExpectedErrorBody = {},
): Record<string, unknown> {
  expect({ status: res.status, body: res.text }).toEqual({ status, body: expect.any(String) });
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = res.json as Record<string, unknown>;
  expect(body).toEqual(
    expect.objectContaining({
      statusCode: status,
      error: STATUS_CODES[status],
      message: expect.any(String),
      requestId: res.headers['x-request-id'],
    }),
  );
  if (expected.messageNotEmpty) expect((body.message as string).length).toBeGreaterThan(0);
  expect(res.headers['x-request-id']).toBeTruthy();
  for (const field of Object.keys(body)) expect(ERROR_FIELDS).toContain(field);
  if (expected.noFieldErrors) expect(body).not.toHaveProperty('errors');
  if (expected.zegoCode !== undefined) {
    expect(body.zegoCode).toBe(expected.zegoCode);
    expect(body.zegoRequestId).toEqual(expect.stringMatching(/^\S+$/));
  } else {
    expect(body).not.toHaveProperty('zegoCode');
    expect(body).not.toHaveProperty('zegoRequestId');
  }
  return body;
}
