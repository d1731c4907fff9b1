/**
 * End to end, over real HTTP: the OpenAPI document and UI of the built gateway (`node dist/main.js`).
 * The document must be valid OpenAPI, document every answer the README's status table promises
 * for POST /rooms, describe the bearer API key and the vendor's limits on the body, be readable
 * without an API key, and never carry the ServerSecret or an API key.
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { apiKeysValue } from './support/api-keys.js';
import { REPO_ROOT, type GatewayProcess } from './support/gateway-process.js';
import { HttpRecorder, type RecordedExchange } from './support/http-recorder.js';
import { scenario } from './support/scenario.js';
import { findLeaks } from './support/secret-scan.js';

// Distinctive sentinels: if any of these shows up in the document or the UI, it leaked.
const APP_ID = 2718281828;
const SECRET = 'SENTINEL-secret-openapi-7c1d9e3a5b2f4086';
const KEY = 'sk-SENTINEL-openapi-4e8a0c6b2d9f1357';
const START_TIMEOUT = 30_000;

type Json = Record<string, any>;

const s = scenario({ fakeZim: { appId: APP_ID, serverSecret: SECRET }, apiKeys: { 'svc-docs': KEY } });
const gw = s.gatewayBeforeAll();
const http = new HttpRecorder();
let doc: Json;

async function documentOf(gateway: GatewayProcess): Promise<Json> {
  const res = await http.request(`${gateway.url}/docs-json`);
  expect(res.status).toBe(200);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  return res.json as Json;
}

/** Resolves a local `#/components/...` reference. */
function deref(node: Json): Json {
  if (typeof node.$ref !== 'string') return node;
  return node.$ref
    .replace(/^#\//, '')
    .split('/')
    .reduce((at: Json, part: string) => at[part], doc);
}

/**
 * The statuses of the README's "| situation | answer |" table under "### Errors", each with the
 * situations that lead to it. Only backticked three-digit codes in the answer column count.
 */
function readmeStatuses(): Map<number, string[]> {
  const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const lines = readme.split('\n');
  const header = lines.findIndex((line) => /^\|\s*situation\s*\|\s*answer\s*\|\s*$/.test(line));
  expect(header).toBeGreaterThan(0);
  const statuses = new Map<number, string[]>();
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith('|')) break;
    const [situation, answer] = line.split('|').slice(1, 3).map((cell) => cell.trim());
    const code = /^`(\d{3})`/.exec(answer ?? '');
    expect({ line, code: code?.[1] }).toEqual({ line, code: expect.stringMatching(/^\d{3}$/) });
    const status = Number(code![1]);
    statuses.set(status, [...(statuses.get(status) ?? []), situation!]);
  }
  return statuses;
}

/** Table rows that are not answers of POST /rooms itself. */
const NOT_OF_POST_ROOMS = new Set(['unknown route']);

beforeAll(async () => {
  doc = await documentOf(gw);
});

describe('GET /docs-json', () => {
  it('is a valid OpenAPI document', async () => {
    const result = await new Validator().validate(structuredClone(doc));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(doc.openapi).toMatch(/^3\./);
  });

  it('names the gateway and carries the version from package.json', () => {
    const manifest = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(doc.info.title).toBe('zim-room-gateway');
    expect(doc.info.version).toBe(manifest.version);
    expect(doc.info.description).toEqual(expect.any(String));
  });

  it('describes the API key as a bearer security scheme that POST /rooms requires', () => {
    const schemes = doc.components.securitySchemes as Json;
    const [name, scheme] = Object.entries(schemes).find(([, s]) => s.type === 'http' && s.scheme === 'bearer')!;
    expect(scheme.description).toMatch(/API key/);
    expect(scheme).not.toHaveProperty('bearerFormat', 'JWT');
    expect(doc.paths['/rooms'].post.security).toEqual([{ [name]: [] }]);
  });

  it('documents only the client API: POST /rooms, tagged rooms, and the batch routes', () => {
    expect(Object.keys(doc.paths).sort()).toEqual(['/rooms', '/rooms/batches', '/rooms/batches/{batchId}']);
    expect(Object.keys(doc.paths['/rooms'])).toEqual(['post']);
    expect(doc.paths['/rooms'].post.tags).toEqual(['rooms']);
    expect(doc.paths['/rooms'].post.summary).toEqual(expect.any(String));
  });

  it('documents the batch routes: their statuses, bodies, errors and the Location of a 202', () => {
    const batches = doc.paths['/rooms/batches'];
    const batch = doc.paths['/rooms/batches/{batchId}'];
    expect(Object.keys(batches)).toEqual(['post']);
    expect(Object.keys(batch).sort()).toEqual(['delete', 'get']);
    for (const operation of [batches.post, batch.get, batch.delete]) {
      expect(operation.tags).toEqual(['room batches']);
      expect(operation.security).toEqual(doc.paths['/rooms'].post.security);
    }
    expect(Object.keys(batches.post.responses).sort()).toEqual(['202', '400', '401', '409', '413', '422', '429', '503']);
    expect(batches.post.responses['202'].headers.Location).toBeDefined();
    expect(Object.keys(deref(batches.post.responses['202'].content['application/json'].schema).properties).sort()).toEqual(
      ['batchId', 'cancelled', 'created', 'createdAt', 'failed', 'finishedAt', 'pending', 'status', 'total'],
    );
    for (const operation of [batch.get, batch.delete]) {
      expect(Object.keys(operation.responses).sort()).toEqual(['200', '400', '401', '404', '429', '503']);
      const body = deref(operation.responses['200'].content['application/json'].schema);
      expect(body.properties.rooms.type).toBe('array');
      expect(operation.parameters.map((p: Json) => p.name).sort()).toEqual(['batchId', 'cursor', 'limit', 'status']);
    }
    const request = deref(batches.post.requestBody.content['application/json'].schema);
    expect(request.required).toEqual(['rooms']);
    expect(request.additionalProperties).toBe(false);
  });

  describe('POST /rooms responses', () => {
    const responses = (): Json => doc.paths['/rooms'].post.responses;
    const headersOf = (status: number): Json => responses()[String(status)].headers ?? {};

    it('document every status of the README status table', () => {
      const table = readmeStatuses();
      // A sanity check on the parsing itself: the table has the success and both kinds of error.
      for (const status of [201, 400, 401, 429, 502, 504]) expect(table.has(status)).toBe(true);
      const expected = [...table]
        .filter(([, situations]) => situations.some((s) => !NOT_OF_POST_ROOMS.has(s)))
        .map(([status]) => String(status))
        .sort();
      const documented = Object.keys(responses()).sort();
      expect(documented).toEqual(expect.arrayContaining(expected));
      // And nothing the README does not promise.
      expect(expected).toEqual(expect.arrayContaining(documented));
    });

    it('document the success body', () => {
      const created = responses()['201'];
      const schema = deref(created.content['application/json'].schema);
      expect(schema.required).toEqual(expect.arrayContaining(['roomId', 'attributeSeq', 'zegoRequestId']));
      expect(Object.keys(schema.properties).sort()).toEqual(['attributeSeq', 'recovered', 'roomId', 'zegoRequestId']);
    });

    it('document every error with the one error shape and a description', () => {
      const errors = Object.entries(responses()).filter(([status]) => Number(status) >= 400);
      expect(errors.length).toBeGreaterThanOrEqual(10);
      for (const [status, response] of errors) {
        expect({ status, description: response.description }).toEqual({ status, description: expect.stringMatching(/\S/) });
        const schema = deref(response.content['application/json'].schema);
        expect(Object.keys(schema.properties).sort()).toEqual(
          ['error', 'errors', 'message', 'moreErrors', 'requestId', 'statusCode', 'zegoCode', 'zegoRequestId'].sort(),
        );
        expect(schema.required.sort()).toEqual(['error', 'message', 'requestId', 'statusCode']);
        const item = deref(schema.properties.errors.items);
        expect(item.required.sort()).toEqual(['field', 'reason']);
      }
    });

    it('document X-Request-Id on every response and the X-RateLimit-* headers past the API key', () => {
      for (const status of Object.keys(responses())) {
        expect({ status, headers: Object.keys(headersOf(Number(status))) }).toEqual({
          status,
          headers: expect.arrayContaining(['X-Request-Id']),
        });
      }
      for (const status of [201, 400, 429, 503]) {
        expect(Object.keys(headersOf(status))).toEqual(
          expect.arrayContaining(['X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset']),
        );
      }
      expect(Object.keys(headersOf(401))).not.toContain('X-RateLimit-Limit');
    });

    it('document WWW-Authenticate on 401 and Retry-After on 429 and 503', () => {
      expect(headersOf(401)).toHaveProperty('WWW-Authenticate');
      expect(headersOf(429)).toHaveProperty('Retry-After');
      expect(headersOf(503)).toHaveProperty('Retry-After');
    });
  });

  it('documents the optional X-Request-Id request header', () => {
    const parameters = doc.paths['/rooms'].post.parameters as Json[];
    expect(parameters).toContainEqual(
      expect.objectContaining({ name: 'X-Request-Id', in: 'header', required: false }),
    );
  });

  it('documents the optional X-Priority request header with the two levels the gateway accepts', () => {
    const parameters = doc.paths['/rooms'].post.parameters as Json[];
    expect(parameters).toContainEqual(
      expect.objectContaining({ name: 'X-Priority', in: 'header', required: false, schema: { type: 'string', enum: ['interactive', 'batch'] } }),
    );
  });

  describe('the request body schema', () => {
    const body = (): Json => deref(doc.paths['/rooms'].post.requestBody.content['application/json'].schema);

    it('requires roomId with the vendor limits: 1-32 characters from the allowed set', () => {
      const schema = body();
      expect(doc.paths['/rooms'].post.requestBody.required).toBe(true);
      expect(schema.required).toContain('roomId');
      const roomId = schema.properties.roomId;
      expect(roomId).toEqual(expect.objectContaining({ type: 'string', minLength: 1, maxLength: 32 }));
      // JSON Schema patterns are ECMA-262 with the u flag in most validators.
      const pattern = new RegExp(roomId.pattern, 'u');
      for (const ok of ['room-42', 'x', 'x'.repeat(32), '!#$%&()+-:;<=.>?@[]^_ ,{']) expect(pattern.test(ok)).toBe(true);
      for (const bad of ['', 'x'.repeat(33), 'a*b', 'a/b', 'a}b', 'é', 'room\n']) expect(pattern.test(bad)).toBe(false);
    });

    it('states the byte limits, the other bounds and refuses unknown fields', () => {
      const schema = body();
      expect(schema.additionalProperties).toBe(false);
      expect(schema.properties.fromUserId.pattern).toBe(schema.properties.roomId.pattern);
      expect(schema.properties.roomName).toEqual(expect.objectContaining({ maxLength: 64 }));
      expect(schema.properties.roomName.description).toMatch(/64 UTF-8 \*\*bytes\*\*/);
      expect(schema.properties.destroyDelayTime).toEqual(
        expect.objectContaining({ type: 'integer', minimum: 0, maximum: 10800 }),
      );
      expect(schema.properties.attributes).toEqual(expect.objectContaining({ type: 'array', maxItems: 20 }));
      expect(schema.properties.attributes.description).toMatch(/5120 UTF-8 bytes/);
      const attribute = deref(schema.properties.attributes.items);
      expect(attribute.additionalProperties).toBe(false);
      expect(attribute.required.sort()).toEqual(['key', 'value']);
      expect(attribute.properties.key).toEqual(expect.objectContaining({ minLength: 1, maxLength: 16 }));
      expect(attribute.properties.key.description).toMatch(/16 UTF-8 bytes/);
      expect(attribute.properties.value).toEqual(expect.objectContaining({ maxLength: 1024 }));
      expect(attribute.properties.autoDelete.type).toBe('boolean');
    });

    it('requires fromUserId when the gateway has no default operator', () => {
      expect(body().required).toContain('fromUserId');
    });

    it("has examples the gateway accepts: a room made of them is created (201)", async () => {
      const schema = body();
      const example = Object.fromEntries(
        Object.entries(schema.properties as Json).map(([name, property]) => [name, property.example]),
      );
      const res: RecordedExchange = await http.request(`${gw.url}/rooms`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(example),
      });
      expect({ status: res.status, body: res.json }).toEqual({
        status: 201,
        body: expect.objectContaining({ roomId: example.roomId }),
      });
    });
  });
});

describe('a gateway with a default operator and ZEGO_MAX_ROOM_ATTRIBUTES=16', () => {
  it('documents fromUserId as optional and at most 16 attributes', async () => {
    const other = await s.startGateway({
      ZEGO_DEFAULT_FROM_USER_ID: 'ops-default',
      ZEGO_MAX_ROOM_ATTRIBUTES: '16',
    });
    try {
      const otherDoc = await documentOf(other);
      const schema = otherDoc.components.schemas.CreateRoomDto;
      expect(schema.required).toEqual(['roomId']);
      expect(schema.properties.attributes.maxItems).toBe(16);
      // The default operator's id is configuration, not documentation.
      expect(JSON.stringify(otherDoc)).not.toContain('ops-default');
    } finally {
      await other.stop();
    }
  }, START_TIMEOUT);
});

describe('GET /docs', () => {
  it('answers the Swagger UI as HTML, with its assets', async () => {
    const page = await http.request(`${gw.url}/docs`);
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.text).toMatch(/<html/i);
    expect(page.text).toContain('swagger-ui');
    for (const asset of ['swagger-ui-init.js', 'swagger-ui-bundle.js', 'swagger-ui.css']) {
      const res = await http.request(`${gw.url}/docs/${asset}`);
      expect({ asset, status: res.status }).toEqual({ asset, status: 200 });
    }
  });

  it('serves every file the page loads, each with its own type', async () => {
    const page = await http.request(`${gw.url}/docs`);
    // The page sits at /docs, so its relative references point into /docs/.
    const loaded = [...page.text.matchAll(/(?:src|href)=["']\.\/docs\/([^"']+)["']/g)].map((match) => match[1]!).sort();
    expect(loaded).toEqual(
      [
        'favicon-16x16.png',
        'favicon-32x32.png',
        'swagger-ui-bundle.js',
        'swagger-ui-init.js',
        'swagger-ui-standalone-preset.js',
        'swagger-ui.css',
      ].sort(),
    );
    const types: Record<string, RegExp> = { js: /javascript/, css: /^text\/css/, png: /^image\/png/ };
    for (const file of loaded) {
      const res = await fetch(`${gw.url}/docs/${file}`);
      await res.arrayBuffer();
      expect({ file, status: res.status, type: res.headers.get('content-type') }).toEqual({
        file,
        status: 200,
        type: expect.stringMatching(types[file.split('.').pop()!]!),
      });
    }
  });

  it('serves nothing else of swagger-ui-dist: its manifest, README, source maps and other pages are 404', async () => {
    for (const path of [
      '/docs/package.json',
      '/docs/README.md',
      '/docs/swagger-ui-bundle.js.map',
      '/docs/swagger-ui.css.map',
      '/docs/swagger-ui.js',
      '/docs/index.html',
      '/docs/oauth2-redirect.html',
      '/docs/LICENSE',
      '/docs/',
      '/docs/docs/swagger-ui-init.js',
    ]) {
      const res = await http.request(`${gw.url}${path}`);
      expect({ path, status: res.status }).toEqual({ path, status: 404 });
      expect(res.json).toMatchObject({ statusCode: 404, requestId: res.headers['x-request-id'] });
    }
  });
});

describe('no API key needed, no secret shown', () => {
  it('serves /docs and /docs-json without an Authorization header', async () => {
    // Every request above went without one; say it outright for both.
    for (const url of [`${gw.url}/docs`, `${gw.url}/docs-json`]) {
      const res = await fetch(url);
      expect({ url, status: res.status }).toEqual({ url, status: 200 });
      await res.arrayBuffer();
    }
    const docRequests = http.exchanges.filter((e) => /\/docs/.test(e.url));
    expect(docRequests.length).toBeGreaterThan(0);
  });

  it('the document, the UI and its init script carry neither the secret nor an API key', async () => {
    const init = await http.request(`${gw.url}/docs/swagger-ui-init.js`);
    const page = await http.request(`${gw.url}/docs`);
    const json = await http.request(`${gw.url}/docs-json`);
    const digest = apiKeysValue({ 'svc-docs': KEY }).split(':')[1]!;
    const leaks = findLeaks(
      { 'docs-json': json.text, 'docs html': page.text, 'swagger-ui-init.js': init.text },
      { 'the ServerSecret': SECRET, 'the API key': KEY, "the API key's digest": digest },
    );
    expect(leaks).toEqual([]);
  });
});
