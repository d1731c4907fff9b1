/**
 * Property-based tests of POST /rooms over real HTTP: the built gateway (`node dist/main.js`) as
 * one child process, the fake ZIM vendor in this process, fast-check generating the bodies.
 *
 * The bodies are judged by an oracle written here from the documented rules (README "The
 * endpoint", /work/shared/reference/zim-createroom.md), NOT by importing the gateway's
 * validators. Invariants, for every generated body:
 * - never a 5xx;
 * - oracle says invalid: 400, `errors[]` names exactly the offending top-level fields (each
 *   `field` non-empty), and the vendor is not called;
 * - oracle says valid: 201 (or 409 for a repeated roomId within a batch), and the vendor received
 *   exactly the documented mapping (RoomId, FromUserId or the default operator, RoomName,
 *   DestroyDelayTime, Attributes[{Key, Value, AutoDelete 0/1}]).
 *
 * Bodies are built as raw JSON text, so `__proto__` keys, repeated keys and number spellings
 * (`-0`, `1e2`, `9007199254740993`, `1e309`) reach the gateway exactly as generated; the oracle
 * judges JSON.parse of the same text, which is what the gateway's body parser sees.
 * Requests go out in concurrent batches of 8 over keep-alive connections; the fake is reset
 * between batches, so each batch's vendor calls are exactly its valid bodies.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { jsonOrUndefined } from '../support/http-recorder.js';
import { scenario } from '../support/scenario.js';

const APP_ID = 2718281828;
const SECRET = 'fuzz-secret-3a9c51e07b64d2f8';
const KEY = 'sk-fuzz-7d3e19a2c05b48f6e1';
const DEFAULT_OPERATOR = 'ops-fuzz-default';
const BATCH = 8;
/** Bodies per property; 10,600 in all. */
const RUNS = { arbitraryJson: 2400, nearValid: 6000, valid: 2200 };

const s = scenario({
  fakeZim: { appId: APP_ID, serverSecret: SECRET, qpsLimit: 1_000_000 },
  apiKeys: { fuzz: KEY },
  env: {
    ZEGO_DEFAULT_FROM_USER_ID: DEFAULT_OPERATOR,
    CLIENT_RATE_LIMIT: '100000',
    ZEGO_QPS_LIMIT: '10000',
    RATE_LIMIT_REPLICAS: '1',
    ZEGO_MAX_ATTEMPTS: '1',
    // 4xx are logged at warn: only 5xx and crashes reach the log, and the last test reads it.
    LOG_LEVEL: 'error',
  },
});
const { fake } = s;
const gw = s.gatewayBeforeAll();
let sent = 0;

// ------------------------------------------------------------------ the oracle (documented rules)

/** The vendor page's id alphabet: digits, English letters and 24 listed specials. */
const ID_CHARS = [
  ...'0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ',
  ...['!', '#', '$', '%', '&', '(', ')', '+', '-', ':', ';', '<', '=', '.', '>', '?', '@', '[', ']', '^', '_', ' ', ',', '{'],
];
const ID_CHAR_SET = new Set(ID_CHARS);
const FIELDS = ['roomId', 'fromUserId', 'roomName', 'destroyDelayTime', 'attributes'];
const ITEM_FIELDS = ['key', 'value', 'autoDelete'];
const MAX_ATTRIBUTES = 20;

const bytes = (s: string): number => Buffer.byteLength(s, 'utf8');
const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const has = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

function isId(v: unknown): boolean {
  if (typeof v !== 'string' || v.length < 1 || v.length > 32) return false;
  for (const c of v) if (!ID_CHAR_SET.has(c)) return false;
  return true;
}

/** Well-formed UTF-16 (no lone surrogates) of min..max UTF-8 bytes. */
function isText(v: unknown, min: number, max: number): boolean {
  if (typeof v !== 'string') return false;
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const n = v.charCodeAt(i + 1);
      if (!(n >= 0xdc00 && n <= 0xdfff)) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) return false;
  }
  return bytes(v) >= min && bytes(v) <= max;
}

/** Nesting depth of objects and arrays (scalars 0). */
function depth(v: unknown): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[v, 1]];
  while (stack.length > 0) {
    const [x, d] = stack.pop()!;
    if (typeof x !== 'object' || x === null) continue;
    deepest = Math.max(deepest, d);
    for (const child of Object.values(x)) stack.push([child, d + 1]);
  }
  return deepest;
}

interface Verdict {
  valid: boolean;
  /** Offending top-level field names, in body order (or ['body']). */
  offending: string[];
  /** Paths under `attributes` that may be named. */
  attributePaths: Set<string>;
  /** Deeper than any valid body: the gateway may name the body as a whole. */
  deep: boolean;
}

function judge(body: unknown): Verdict {
  const verdict: Verdict = { valid: false, offending: [], attributePaths: new Set(), deep: false };
  if (!isPlainObject(body)) {
    verdict.offending.push('body');
    return verdict;
  }
  verdict.deep = depth(body) > 16;
  if (!has(body, 'roomId')) verdict.offending.push('roomId');
  for (const key of Object.keys(body)) {
    const value = body[key];
    let ok: boolean;
    switch (key) {
      case 'roomId':
      case 'fromUserId': // optional: this gateway has a default operator
        ok = isId(value);
        break;
      case 'roomName':
        ok = isText(value, 0, 64);
        break;
      case 'destroyDelayTime':
        ok = typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 10800;
        break;
      case 'attributes':
        ok = judgeAttributes(value, verdict.attributePaths);
        break;
      default:
        ok = false; // unknown field, prototype keys included
    }
    if (!ok) verdict.offending.push(key);
  }
  verdict.valid = verdict.offending.length === 0;
  return verdict;
}

function judgeAttributes(list: unknown, paths: Set<string>): boolean {
  if (!Array.isArray(list)) {
    paths.add('attributes');
    return false;
  }
  let ok = true;
  const listProblem = (): void => {
    paths.add('attributes');
    ok = false;
  };
  if (list.length > MAX_ATTRIBUTES) listProblem();
  const keys: string[] = [];
  let total = 0;
  list.forEach((item, i) => {
    const at = `attributes[${i}]`;
    if (!isPlainObject(item)) {
      paths.add(at);
      listProblem(); // "an array of objects": a non-object may be blamed on the item or the list
      return;
    }
    const bad = (path: string): void => {
      paths.add(path);
      ok = false;
    };
    if (!isText(item.key, 1, 16)) bad(`${at}.key`);
    if (!isText(item.value, 0, 1024)) bad(`${at}.value`);
    if (has(item, 'autoDelete') && typeof item.autoDelete !== 'boolean') bad(`${at}.autoDelete`);
    for (const k of Object.keys(item)) {
      if (ITEM_FIELDS.includes(k)) continue;
      // An empty key is named `""`: attributes[0][""].
      bad(k === '' ? `${at}[""]` : `${at}.${k}`);
      // The gateway writes a digit-only property like an index: attributes[0][7].
      if (/^\d+$/.test(k)) paths.add(`${at}[${k}]`);
    }
    if (typeof item.key === 'string') keys.push(item.key);
    total += (typeof item.key === 'string' ? bytes(item.key) : 0) + (typeof item.value === 'string' ? bytes(item.value) : 0);
  });
  if (new Set(keys).size !== keys.length) listProblem();
  if (total > 5120) listProblem();
  return ok;
}

/** The vendor body the documented mapping gives, in its wire form (-0 is sent as 0). */
function vendorBody(body: Record<string, unknown>): unknown {
  const out: Record<string, unknown> = {
    FromUserId: has(body, 'fromUserId') ? body.fromUserId : DEFAULT_OPERATOR,
    RoomId: body.roomId,
  };
  if (has(body, 'roomName')) out.RoomName = body.roomName;
  if (has(body, 'destroyDelayTime')) out.DestroyDelayTime = body.destroyDelayTime;
  if (has(body, 'attributes')) {
    out.Attributes = (body.attributes as Record<string, unknown>[]).map((a) => ({
      Key: a.key,
      Value: a.value,
      ...(has(a, 'autoDelete') && { AutoDelete: a.autoDelete === true ? 1 : 0 }),
    }));
  }
  return JSON.parse(JSON.stringify(out));
}

/** JSON with sorted keys, to compare vendor bodies as a multiset. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (isPlainObject(v)) {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

// ------------------------------------------------------------------ raw JSON building

/** A JSON object from [key, raw JSON value] pairs: keeps `__proto__` and repeated keys. */
const rawObject = (pairs: [string, string][]): string =>
  `{${pairs.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
const rawArray = (items: string[]): string => `[${items.join(',')}]`;
const str = (s: string): string => JSON.stringify(s);

// ------------------------------------------------------------------ generators

const idChar = fc.constantFrom(...ID_CHARS);
/** Characters just outside the id set, and look-alikes. */
const NEAR_MISS_ID_CHARS = [
  '*', '/', '\\', "'", '"', '|', '}', '~', '`', '\t', '\n', '\r', '\u0000', '\u007f', '\u00a0',
  '\uff01', '\u200b', 'é', '会', '😀', '\ud800', '\udc00',
];
const validId = fc.oneof(
  fc.string({ unit: idChar, minLength: 1, maxLength: 32 }),
  fc.string({ unit: idChar, minLength: 32, maxLength: 32 }),
  fc.string({ unit: idChar, minLength: 1, maxLength: 3 }),
);
const invalidId = fc.oneof(
  fc.constant(''),
  fc.string({ unit: idChar, minLength: 33, maxLength: 40 }),
  fc
    .tuple(fc.string({ unit: idChar, maxLength: 31 }), fc.constantFrom(...NEAR_MISS_ID_CHARS), fc.nat())
    .map(([id, c, at]) => {
      const i = id.length === 0 ? 0 : at % (id.length + 1);
      return id.slice(0, i) + c + id.slice(i);
    }),
  // 16 emoji: 32 UTF-16 units, so a naive length check passes it
  fc.constant('😀'.repeat(16)),
);
const NON_STRINGS = ['42', '-0', 'null', 'true', 'false', '[]', '{}', '["room"]', '{"id":"room"}', '1e308', '9007199254740993'];
const rawId = (validWeight: number) =>
  fc.oneof(
    { weight: validWeight, arbitrary: validId.map(str) },
    { weight: 2, arbitrary: invalidId.map(str) },
    { weight: 1, arbitrary: fc.constantFrom(...NON_STRINGS) },
  );

/** Text units of 1 to 4 UTF-8 bytes, with characters that need escaping in JSON. */
const textUnit = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.constantFrom('"', '\\', '\n', '\u0000', '\u2028', '\ufeff', '\u007f') },
  { weight: 2, arbitrary: fc.constantFrom('é', 'ß', 'ñ', 'Ω', 'ж') },
  { weight: 2, arbitrary: fc.integer({ min: 0x4e00, max: 0x9fff }).map((c) => String.fromCodePoint(c)) },
  { weight: 2, arbitrary: fc.integer({ min: 0x1f300, max: 0x1f64f }).map((c) => String.fromCodePoint(c)) },
);

/** Well-formed text of exactly `target` UTF-8 bytes (multibyte first, padded with ASCII). */
function fill(units: string[], target: number): string {
  let out = '';
  let size = 0;
  for (const u of units) {
    if (size + bytes(u) <= target) {
      out += u;
      size += bytes(u);
    }
  }
  return out + 'x'.repeat(target - size);
}
const textOfBytes = (min: number, max: number) =>
  fc.tuple(fc.array(textUnit, { maxLength: Math.min(max, 80) }), fc.integer({ min, max })).map(([u, n]) => fill(u, n));
/** Near a byte limit: limit-3 .. limit (valid) or limit+1 .. limit+4 (invalid). */
const nearLimit = (limit: number, over: boolean) =>
  fc
    .tuple(fc.array(textUnit, { maxLength: 80 }), fc.integer({ min: 0, max: 3 }))
    .map(([u, d]) => (over ? fillOver(u, limit + 1 + d) : fill(u, limit - d)));
/** At least `target` bytes, ending with a multibyte character when possible (straddles the limit). */
function fillOver(units: string[], target: number): string {
  const base = fill(units, Math.max(0, target - 4));
  const wide = units.find((u) => bytes(u) >= 2) ?? 'é';
  return fill([base, wide, ...units], target) || 'x'.repeat(target);
}
const loneSurrogate = fc
  .tuple(fc.string({ maxLength: 5 }), fc.constantFrom('\ud800', '\udbff', '\udc00', '\udfff'))
  .map(([s, c]) => s + c);

const rawRoomName = fc.oneof(
  { weight: 4, arbitrary: textOfBytes(0, 64).map(str) },
  { weight: 3, arbitrary: nearLimit(64, false).map(str) },
  { weight: 2, arbitrary: nearLimit(64, true).map(str) },
  { weight: 1, arbitrary: loneSurrogate.map(str) },
  { weight: 1, arbitrary: fc.constantFrom(...NON_STRINGS) },
);

/** Number spellings: JSON.parse gives the same value to the gateway and to the oracle. */
const rawDelay = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 10800 }).map(String) },
  { weight: 2, arbitrary: fc.constantFrom('0', '1', '10799', '10800', '-0', '0.0', '1e2', '10800.0', '3.0e3', '1.08e4', '10800.00000000000001') },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      '-1', '10801', '1.5', '0.1', '"5"', '"300"', 'null', 'true', '[5]', '{}', '1e308', '-1e308', '1e309',
      '9007199254740993', '18446744073709551616', '5e-324', '10800.5', '-0.5',
    ),
  },
  { weight: 1, arbitrary: fc.double().filter(Number.isFinite).map((d) => JSON.stringify(d)) },
);

interface AttributeItem {
  key: string;
  value: string;
  autoDelete?: boolean;
}
const validKey = fc.oneof(textOfBytes(1, 16), nearLimit(16, false).filter((k) => k.length > 0));
const item = (key: fc.Arbitrary<string>) =>
  fc.record(
    { key, value: fc.oneof(textOfBytes(0, 40), textOfBytes(0, 1024), nearLimit(1024, false)), autoDelete: fc.boolean() },
    { requiredKeys: ['key', 'value'] },
  );
/** A valid attribute list: 0-20 items with unique keys, the total trimmed to <= 5120 bytes. */
const validAttributes = fc
  .tuple(
    fc.uniqueArray(item(validKey), { selector: (a) => a.key, maxLength: MAX_ATTRIBUTES }),
    fc.constantFrom(0, 1, 19, 20),
    fc.boolean(),
  )
  .map(([items, wanted, pad]) => {
    const list: AttributeItem[] = [...items];
    // Pad towards the boundary count with short unique keys.
    for (let i = 0; pad && list.length < wanted; i++) {
      if (!list.some((a) => a.key === `p${i}`)) list.push({ key: `p${i}`, value: '' });
    }
    let total = list.reduce((s, a) => s + bytes(a.key) + bytes(a.value), 0);
    for (const a of list) {
      if (total <= 5120) break;
      total -= bytes(a.value);
      a.value = '';
    }
    return list;
  });
/** Exactly 5120 bytes of keys and values (or 5121 when `over`), in >= 6 items. */
const attributesAtTotal = (over: boolean) =>
  fc.tuple(fc.integer({ min: 6, max: 20 }), fc.array(textUnit, { maxLength: 40 })).map(([n, units]) => {
    const list: AttributeItem[] = Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: '' }));
    let remaining = 5120 + (over ? 1 : 0) - list.reduce((s, a) => s + bytes(a.key), 0);
    for (const a of list) {
      const size = Math.min(1024, remaining);
      a.value = fill(units, size);
      remaining -= size;
    }
    return list;
  });

const rawItem = (a: AttributeItem): [string, string][] => [
  ['key', str(a.key)],
  ['value', str(a.value)],
  ...(a.autoDelete === undefined ? [] : [['autoDelete', String(a.autoDelete)] as [string, string]]),
];

const PROTO_KEYS = ['__proto__', 'constructor', 'prototype'];
const ODD_KEYS = [...PROTO_KEYS, 'RoomId', 'roomID', 'room_id', 'Key', 'extra', '0', 'a.b', 'attributes[0]'];
/** Unknown keys that name Object.prototype members: class-transformer would skip them silently. */
const PROTOTYPE_MEMBER_KEYS = Object.getOwnPropertyNames(Object.prototype).filter(
  (k) => k !== '__proto__' && k !== 'constructor',
);
const nonEmptyKey = fc.string({ minLength: 1, maxLength: 8 });
const rawScalar = fc.constantFrom('1', '"x"', 'null', 'true', '{}', '[]', '{"polluted":true}', '{"__proto__":{"polluted":true}}');
/** A value nested `n` levels deep (alternating arrays and objects). */
const deepValue = fc.integer({ min: 10, max: 60 }).map((n) => {
  let v = '1';
  for (let i = 0; i < n; i++) v = i % 2 === 0 ? `[${v}]` : `{"a":${v}}`;
  return v;
});

/** An attribute list as [raw item (pairs or raw text)], mutated to break one rule or not. */
type RawItem = [string, string][] | string;
const mutatedAttributes = fc.oneof(
  validAttributes.map((l) => l.map(rawItem) as RawItem[]),
  attributesAtTotal(false).map((l) => l.map(rawItem) as RawItem[]),
  attributesAtTotal(true).map((l) => l.map(rawItem) as RawItem[]),
  // 21 items
  fc.constant(Array.from({ length: 21 }, (_, i) => rawItem({ key: `k${i}`, value: 'v' }))),
  // a repeated key (also keys differing only in case, which are distinct)
  fc.tuple(validAttributes.filter((l) => l.length >= 1), fc.boolean()).map(([l, sameCase]) => {
    const copy = { ...l[0]!, key: sameCase ? l[0]!.key : l[0]!.key.toUpperCase() };
    return [...l, copy].map(rawItem) as RawItem[];
  }),
  // one item with a broken field
  fc
    .tuple(
      validAttributes.filter((l) => l.length >= 1),
      fc.nat(),
      fc.constantFrom('key', 'value', 'autoDelete', 'extra'),
      fc.oneof(
        fc.constantFrom('""', '1', '0', 'null', '"true"', 'true', '[]', '{}'),
        nearLimit(16, true).map(str),
        nearLimit(1024, true).map(str),
        loneSurrogate.map(str),
      ),
      fc.constantFrom(...ODD_KEYS, 'Value', 'AutoDelete'),
    )
    .map(([l, at, field, raw, oddKey]) => {
      const items: RawItem[] = l.map(rawItem);
      const i = at % items.length;
      const pairs = (items[i] as [string, string][]).filter(([k]) => k !== field);
      items[i] = field === 'extra' ? [...pairs, [oddKey, raw]] : [...pairs, [field, raw]];
      return items;
    }),
  // an item that is not an object
  fc
    .tuple(validAttributes, fc.constantFrom('null', '"s"', '5', '[]', '[{"key":"a","value":"b"}]', 'true'))
    .map(([l, raw]) => [...l.map(rawItem), raw] as RawItem[]),
);
const rawAttributes = fc.oneof(
  { weight: 6, arbitrary: mutatedAttributes.map((items) => rawArray(items.map((it) => (typeof it === 'string' ? it : rawObject(it))))) },
  { weight: 1, arbitrary: fc.constantFrom('{}', '"x"', 'null', '5', '{"key":"a","value":"b"}', 'true') },
  { weight: 1, arbitrary: deepValue.map((v) => `[{"key":"k","value":"v","autoDelete":${v}}]`) },
);

/** Mostly valid bodies, each field sometimes broken, plus odd or repeated keys. */
const nearValidBody = fc
  .record(
    {
      roomId: rawId(6),
      fromUserId: rawId(6),
      roomName: rawRoomName,
      destroyDelayTime: rawDelay,
      attributes: rawAttributes,
    },
    { requiredKeys: [] },
  )
  .chain((fields) =>
    fc.tuple(
      fc.constant(Object.entries(fields) as [string, string][]),
      fc.array(fc.tuple(fc.oneof(fc.constantFrom(...ODD_KEYS), nonEmptyKey), fc.oneof(rawScalar, deepValue)), {
        maxLength: 2,
      }),
      fc.option(fc.constantFrom(...FIELDS), { freq: 6 }),
      fc.nat(),
    ),
  )
  .map(([pairs, extras, repeated, rotate]) => {
    const all: [string, string][] = [...pairs];
    // Mostly no extra keys, so that plenty of bodies stay valid.
    if (rotate % 4 === 0) all.push(...extras);
    // A repeated key: JSON.parse keeps the last one (as the gateway's parser does).
    if (repeated !== null) all.push([repeated, repeated === 'roomId' ? str('dup-room') : 'null']);
    const r = all.length === 0 ? 0 : rotate % all.length;
    return rawObject([...all.slice(r), ...all.slice(0, r)]);
  });

/** Always valid, to check the mapping field for field. */
const validBody = fc
  .record(
    {
      roomId: validId,
      fromUserId: validId,
      roomName: fc.oneof(textOfBytes(0, 64), nearLimit(64, false)),
      destroyDelayTime: fc.oneof(fc.integer({ min: 0, max: 10800 }), fc.constantFrom(0, 10800)),
      attributes: fc.oneof(validAttributes, attributesAtTotal(false)),
    },
    { requiredKeys: ['roomId'] },
  )
  .map((b) => JSON.stringify(b));

/** Arbitrary JSON, at the top level and as the values of the body's fields. */
const arbitraryBody = fc.oneof(
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc
    .dictionary(fc.oneof(fc.constantFrom(...FIELDS, ...ODD_KEYS), nonEmptyKey), fc.jsonValue({ maxDepth: 3 }), {
      maxKeys: 6,
    })
    .map((v) => JSON.stringify(v)),
  fc
    .record({ roomId: validId, fromUserId: validId }, { requiredKeys: ['roomId'] })
    .chain((ids) =>
      fc
        .dictionary(fc.constantFrom(...FIELDS, ...ODD_KEYS), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 })
        .map((extra) => JSON.stringify({ ...ids, ...extra })),
    ),
);

// ------------------------------------------------------------------ sending and checking

interface Answer {
  status: number;
  text: string;
  json: unknown;
}

async function send(raw: string): Promise<Answer> {
  const response = await fetch(`${gw.url}/rooms`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
    body: raw,
  });
  const text = await response.text();
  return { status: response.status, text, json: jsonOrUndefined(text) };
}

function fail(raw: string, answer: Answer, why: string): never {
  throw new Error(`${why}\n  body sent: ${raw.length > 600 ? `${raw.slice(0, 600)}…` : raw}\n  answer: ${answer.status} ${answer.text.slice(0, 600)}`);
}

/** `field` names top-level key `key` (the empty key as `""`): exactly, or a path below it. */
const names = (field: string, key: string): boolean => {
  const name = key === '' ? '""' : key;
  return field === name || field.startsWith(`${name}.`) || field.startsWith(`${name}[`);
};

function checkRejection(raw: string, verdict: Verdict, answer: Answer): void {
  if (answer.status !== 400) fail(raw, answer, `expected 400 for a body the oracle finds invalid (${verdict.offending.join(', ')})`);
  const errors = (answer.json as { errors?: unknown } | undefined)?.errors;
  if (!Array.isArray(errors) || errors.length === 0) fail(raw, answer, 'a 400 without errors[]');
  const fields = errors.map((e) => (e as { field?: unknown }).field);
  if (!fields.every((f): f is string => typeof f === 'string' && f.length > 0)) {
    fail(raw, answer, 'an errors[] entry without a non-empty field');
  }
  const allowed = verdict.deep ? [...verdict.offending, 'body'] : verdict.offending;
  for (const field of fields) {
    if (!allowed.some((key) => names(field, key))) fail(raw, answer, `names ${field}, which the oracle finds valid`);
    // Below another offending key, e.g. an unknown key spelt "attributes[0]".
    const ownKey = verdict.offending.some((key) => key !== 'attributes' && names(field, key));
    if (!ownKey && names(field, 'attributes') && verdict.offending.includes('attributes') && !verdict.attributePaths.has(field)) {
      fail(raw, answer, `names ${field}; expected one of ${[...verdict.attributePaths].join(', ')}`);
    }
  }
  if (fields.includes('body') && verdict.deep) return; // refused as a whole before field checks
  for (const key of verdict.offending) {
    if (!fields.some((f) => names(f, key))) fail(raw, answer, `does not name ${key === '' ? '"" (the empty key)' : key}`);
  }
}

/** Sends a batch concurrently and checks every invariant. */
async function checkBatch(raws: string[]): Promise<void> {
  fake.reset();
  const answers = await Promise.all(raws.map(send));
  sent += raws.length;
  const calls = fake.calls;
  const expectedVendorBodies: string[] = [];
  const createdBy = new Map<string, number[]>();
  raws.forEach((raw, i) => {
    const answer = answers[i]!;
    if (answer.status >= 500) fail(raw, answer, 'a 5xx');
    const body: unknown = JSON.parse(raw);
    const verdict = judge(body);
    if (!verdict.valid) return checkRejection(raw, verdict, answer);
    const b = body as Record<string, unknown>;
    expectedVendorBodies.push(canonical(vendorBody(b)));
    const roomId = b.roomId as string;
    createdBy.set(roomId, [...(createdBy.get(roomId) ?? []), i]);
    if (answer.status === 201) {
      const attributes = Array.isArray(b.attributes) ? b.attributes.length : 0;
      const reply = answer.json as Record<string, unknown>;
      if (reply?.roomId !== roomId || reply.attributeSeq !== attributes || typeof reply.zegoRequestId !== 'string') {
        fail(raw, answer, `a 201 that does not match (roomId, attributeSeq ${attributes}, zegoRequestId)`);
      }
    } else if (answer.status !== 409) {
      fail(raw, answer, 'expected 201 (or 409 for a repeated roomId) for a body the oracle finds valid');
    }
  });
  // A repeated roomId within the batch: the first to reach the vendor wins, the others get 409.
  for (const [roomId, indexes] of createdBy) {
    const created = indexes.filter((i) => answers[i]!.status === 201).length;
    if (created !== 1) {
      const i = indexes[0]!;
      fail(raws[i]!, answers[i]!, `${indexes.length} valid bodies with roomId ${JSON.stringify(roomId)}, ${created} answered 201`);
    }
  }
  // The vendor saw exactly the valid bodies, each mapped field for field; nothing else.
  const actual = calls.map((c) => canonical(c.body)).sort();
  expectedVendorBodies.sort();
  if (JSON.stringify(actual) !== JSON.stringify(expectedVendorBodies)) {
    throw new Error(
      `vendor calls do not match the valid bodies of the batch\n  expected: ${expectedVendorBodies.join('\n            ')}\n` +
        `  received: ${actual.join('\n            ')}\n  batch: ${raws.join('\n         ')}`,
    );
  }
}

const batchOf = (body: fc.Arbitrary<string>) =>
  fc.array(body, { minLength: BATCH, maxLength: BATCH });
const runs = (bodies: number): fc.Parameters<[string[]]> => ({ numRuns: Math.ceil(bodies / BATCH) });

// ------------------------------------------------------------------ the properties

describe('POST /rooms under generated bodies (fast-check, real HTTP)', () => {
  it('the oracle agrees with the documented examples', () => {
    expect(judge({ roomId: 'room-42', fromUserId: 'ops-bot', roomName: 'Design review', destroyDelayTime: 300, attributes: [{ key: 'topic', value: 'q3', autoDelete: true }] }).valid).toBe(true);
    expect(judge({ roomId: 'r', roomName: '会'.repeat(21) }).valid).toBe(true);
    expect(judge({ roomId: 'r', roomName: '会'.repeat(22) }).offending).toEqual(['roomName']);
    expect(judge({ roomId: 'x'.repeat(33) }).offending).toEqual(['roomId']);
    expect(judge({ roomId: 'a*b' }).offending).toEqual(['roomId']);
    expect(judge({ roomId: 'r', destroyDelayTime: '300' }).offending).toEqual(['destroyDelayTime']);
    expect(judge({ roomId: 'r', roomName: null }).offending).toEqual(['roomName']);
    expect(judge(JSON.parse('{"roomId":"r","__proto__":{"x":1}}')).offending).toEqual(['__proto__']);
    expect(judge({ roomId: 'r', attributes: [{ key: 'a', value: '' }, { key: 'a', value: '' }] }).offending).toEqual(['attributes']);
    expect(judge({ roomId: 'r', attributes: Array.from({ length: 21 }, (_, i) => ({ key: `k${i}`, value: '' })) }).valid).toBe(false);
    expect(judge([1]).offending).toEqual(['body']);
  });

  it('arbitrary JSON: never a 5xx; invalid bodies get 400 naming their fields and never reach the vendor', async () => {
    await fc.assert(fc.asyncProperty(batchOf(arbitraryBody), checkBatch), runs(RUNS.arbitraryJson));
  }, 120_000);

  it('near-valid bodies (byte limits, multibyte text, id near-misses, odd numbers, prototype keys): exact verdicts', async () => {
    await fc.assert(fc.asyncProperty(batchOf(nearValidBody), checkBatch), runs(RUNS.nearValid));
  }, 120_000);

  it('valid bodies: 201 and the vendor receives the documented mapping field for field', async () => {
    await fc.assert(fc.asyncProperty(batchOf(validBody), checkBatch), runs(RUNS.valid));
  }, 120_000);

  // class-transformer skips a plain key whose name the DTO instance already has as an inherited
  // member (toString, valueOf, ...); the validation pipe must still refuse it as unknown.
  it('unknown fields named after Object.prototype members are refused like any other', async () => {
    const body = fc.tuple(fc.constantFrom(...PROTOTYPE_MEMBER_KEYS), rawScalar, fc.boolean(), validId).map(
      ([key, raw, inItem, roomId]) =>
        inItem
          ? rawObject([['roomId', str(roomId)], ['attributes', rawArray([rawObject([['key', '"k"'], ['value', '"v"'], [key, raw]])])]])
          : rawObject([['roomId', str(roomId)], [key, raw]]),
    );
    await fc.assert(fc.asyncProperty(body, (raw) => checkBatch([raw])), { numRuns: 50 });
  });

  it('an empty key is refused and named `""`', async () => {
    const body = fc.tuple(validId, rawScalar).map(([roomId, raw]) => rawObject([['roomId', str(roomId)], ['', raw]]));
    await fc.assert(fc.asyncProperty(body, (raw) => checkBatch([raw])), { numRuns: 20 });
  });

  it('sent at least 10,000 bodies, and the gateway logged no error and still serves', async () => {
    expect(sent).toBeGreaterThanOrEqual(10_000);
    fake.reset();
    const answer = await send(JSON.stringify({ roomId: 'after-the-fuzz' }));
    expect(answer.status).toBe(201);
    expect(gw.isRunning()).toBe(true);
    const problems = gw.logLines().filter((l) => l.level === 'error' || l.level === 'fatal' || l.stream === 'stderr');
    expect(problems.map((l) => l.raw)).toEqual([]);
    // Nothing polluted this process's prototypes through the fake's JSON.parse either.
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
