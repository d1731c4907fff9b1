import { describe, expect, it } from '@jest/globals';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';
import { createHash } from 'node:crypto';
import { loadConfig } from '../app-config.js';
import { GatewayError } from '../http/gateway-error.js';
import { ApiKeyGuard, UnauthorizedError, type AuthenticatedRequest } from './api-key.guard.js';
import { ApiKeyStore } from './api-key-store.js';

const KEY = 'SENTINEL-guard-key_0123.456~789';
const sha256 = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

function guard(): ApiKeyGuard {
  const config = loadConfig({
    ZEGO_APP_ID: '1',
    ZEGO_SERVER_SECRET: 'secret',
    API_KEYS: `orders:${sha256(KEY)}`,
  });
  return new ApiKeyGuard(new ApiKeyStore(config));
}

function requestWith(authorization?: string): AuthenticatedRequest {
  return { headers: authorization === undefined ? {} : { authorization } } as AuthenticatedRequest;
}

function context(request: AuthenticatedRequest): ExecutionContextHost {
  return new ExecutionContextHost([request, {}, () => undefined]);
}

/** The error canActivate throws, or a failure when it lets the request through. */
function refusal(request: AuthenticatedRequest): UnauthorizedError {
  try {
    guard().canActivate(context(request));
  } catch (error) {
    expect(error).toBeInstanceOf(UnauthorizedError);
    expect(error).toBeInstanceOf(GatewayError);
    return error as UnauthorizedError;
  }
  throw new Error('expected the guard to refuse the request');
}

describe('ApiKeyGuard', () => {
  it.each([
    ['Bearer', `Bearer ${KEY}`],
    ['a lower-case scheme', `bearer ${KEY}`],
    ['an upper-case scheme', `BEARER ${KEY}`],
    ['several spaces after the scheme', `Bearer   ${KEY}`],
    ['trailing whitespace', `Bearer ${KEY}  `],
  ])('lets a known key through with %s and records the client', (_label, header) => {
    const request = requestWith(header);
    expect(guard().canActivate(context(request))).toBe(true);
    expect(request.client).toEqual({ clientId: 'orders' });
  });

  it('refuses a request without an Authorization header, saying a key is missing', () => {
    const error = refusal(requestWith());
    expect(error.status).toBe(401);
    expect(error.publicMessage).toMatch(/missing/i);
  });

  it.each([
    ['an empty header', ''],
    ['the scheme alone', 'Bearer'],
    ['the scheme and a space', 'Bearer '],
    ['the Basic scheme', `Basic ${Buffer.from(`orders:${KEY}`).toString('base64')}`],
    ['another scheme', `Token ${KEY}`],
    ['the key without a scheme', KEY],
    ['no space after the scheme', `Bearer${KEY}`],
    ['a key with a space inside', `Bearer ${KEY} extra`],
    ['a key longer than 512 characters', `Bearer ${'k'.repeat(513)}`],
    ['a non-ASCII key', `Bearer ${KEY}é`],
  ])('refuses %s with a 401', (_label, header) => {
    const request = requestWith(header);
    const error = refusal(request);
    expect(error.status).toBe(401);
    expect(request.client).toBeUndefined();
  });

  it.each([
    ['an unknown key', 'Bearer SENTINEL-unknown'],
    ['a known key in another case', `Bearer ${KEY.toUpperCase()}`],
  ])('refuses %s, saying the key is unknown', (_label, header) => {
    const error = refusal(requestWith(header));
    expect(error.status).toBe(401);
    expect(error.publicMessage).toMatch(/unknown/i);
  });

  it('never repeats the presented key in the error', () => {
    for (const header of ['Bearer SENTINEL-unknown', `Token ${KEY}`, `Bearer ${KEY} extra`]) {
      const error = refusal(requestWith(header));
      expect(error.message).not.toContain('SENTINEL');
      expect(error.publicMessage).not.toContain('SENTINEL');
    }
  });
});
