import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { INJECTABLE_WATERMARK } from '@nestjs/common/constants.js';
import type { ValidationPipe } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { useContainer } from 'class-validator';
import { loadConfig, type AppConfig } from '../../app-config.js';
import { APP_CONFIG } from '../../config/config.module.js';
import type { Env } from '../../config/env-reader.js';
import { requestValidationPipe } from '../../http/request-validation.pipe.js';
import { RequestValidationError } from '../../http/request-validation.error.js';
import { OperatorIdRule } from '../validation/operator-id.rule.js';
import { RoomAttributesRules } from '../validation/room-attributes.rules.js';
import { CreateRoomDto } from './create-room.dto.js';
import { RoomAttributeDto } from './room-attribute.dto.js';

/*
 * The DTO runs through the same pipe the application installs, with its configuration-reading
 * constraints resolved from a Nest container the way src/app.factory.ts wires class-validator.
 */

const BASE_ENV: Env = {
  ZEGO_APP_ID: '1234',
  ZEGO_SERVER_SECRET: 'secret-for-dto-tests',
  API_KEYS: `svc:${'ab'.repeat(32)}`,
};

/** The vendor's list of allowed special characters, copied from the CreateRoom page. */
const VENDOR_SPECIALS = ['!', '#', '$', '%', '&', '(', ')', '+', '-', ':', ';', '<', '=', '.', '>', '?', '@', '[', ']', '^', '_', ' ', ',', '{'];
const ALNUM = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'];

type Validate = (body: unknown) => Promise<unknown>;

interface Harness {
  validate: Validate;
  close: () => Promise<void>;
}

async function harness(env: Env): Promise<Harness> {
  const config: AppConfig = loadConfig(env);
  const moduleRef: TestingModule = await Test.createTestingModule({
    providers: [RoomAttributesRules, OperatorIdRule, { provide: APP_CONFIG, useValue: config }],
  }).compile();
  const pipe: ValidationPipe = requestValidationPipe();
  const container = {
    get: <T>(type: new (...args: never[]) => T): T | undefined =>
      Reflect.getMetadata(INJECTABLE_WATERMARK, type) === true
        ? moduleRef.get(type, { strict: false })
        : undefined,
  };
  return {
    validate: (body) => {
      // class-validator's container is global: point it at this harness for every call.
      useContainer(container, { fallback: true });
      return pipe.transform(body, { type: 'body', metatype: CreateRoomDto });
    },
    close: () => moduleRef.close(),
  };
}

/** The RequestValidationError the body gets, or a failure when it passes or fails differently. */
async function rejection(validate: Validate, body: unknown): Promise<RequestValidationError> {
  let outcome: unknown;
  try {
    outcome = await validate(body);
  } catch (error) {
    expect(error).toBeInstanceOf(RequestValidationError);
    const failure = error as RequestValidationError;
    expect(failure.status).toBe(400);
    expect(failure.fieldErrors.length).toBeGreaterThan(0);
    return failure;
  }
  throw new Error(`expected a validation error, but the body passed as ${JSON.stringify(outcome)}`);
}

/** The distinct field paths named by the error, sorted. */
async function failingFields(validate: Validate, body: unknown): Promise<string[]> {
  const failure = await rejection(validate, body);
  return [...new Set(failure.fieldErrors.map((e) => e.field))].sort();
}

const bytes = (text: string): number => Buffer.byteLength(text, 'utf8');

function attributes(count: number, make = (i: number) => ({ key: `k${i}`, value: `v${i}` })) {
  return Array.from({ length: count }, (_, i) => make(i));
}

const room = (extra: Record<string, unknown> = {}) => ({ roomId: 'room-1', fromUserId: 'alice', ...extra });

describe('CreateRoomDto through the request validation pipe', () => {
  let h: Harness;
  let validate: Validate;

  beforeAll(async () => {
    h = await harness(BASE_ENV);
    validate = h.validate;
  });
  afterAll(() => h.close());

  describe('a valid body', () => {
    it('becomes a CreateRoomDto with RoomAttributeDto items and the values unchanged', async () => {
      const body = room({
        roomName: 'Lobby',
        destroyDelayTime: 60,
        attributes: [
          { key: 'a', value: '1', autoDelete: true },
          { key: 'b', value: '' },
        ],
      });
      const dto = await validate(structuredClone(body));
      expect(dto).toBeInstanceOf(CreateRoomDto);
      const typed = dto as CreateRoomDto;
      expect(typed.attributes?.[0]).toBeInstanceOf(RoomAttributeDto);
      expect({ ...typed, attributes: typed.attributes?.map((a) => ({ ...a })) }).toEqual(body);
    });

    it('accepts the minimal body', async () => {
      await expect(validate(room())).resolves.toBeInstanceOf(CreateRoomDto);
    });
  });

  describe('roomName is limited in UTF-8 bytes, not characters', () => {
    const accepted: [string, string][] = [
      ['64 ASCII characters', 'a'.repeat(64)],
      ['32 two-byte characters (64 bytes)', 'é'.repeat(32)],
      ['21 three-byte characters (63 bytes)', '会'.repeat(21)],
      ['16 four-byte emoji (64 bytes)', '😀'.repeat(16)],
      ['an empty name', ''],
    ];
    const refused: [string, unknown][] = [
      ['65 ASCII characters', 'a'.repeat(65)],
      ['33 two-byte characters (66 bytes)', 'é'.repeat(33)],
      ['22 three-byte characters (66 bytes)', '会'.repeat(22)],
      ['17 four-byte emoji (68 bytes)', '😀'.repeat(17)],
      ['a lone high surrogate', 'name\uD800'],
      ['a lone low surrogate', '\uDC00name'],
      ['null', null],
      ['a number', 42],
    ];

    it('the fixtures have the byte sizes their names claim', () => {
      expect(bytes('é'.repeat(32))).toBe(64);
      expect(bytes('会'.repeat(21))).toBe(63);
      expect(bytes('会'.repeat(22))).toBe(66);
      expect(bytes('😀'.repeat(16))).toBe(64);
      expect('😀'.repeat(16).length).toBe(32); // UTF-16 units: neither 16 nor 64
    });

    it.each(accepted)('accepts %s', async (_label, roomName) => {
      await expect(validate(room({ roomName }))).resolves.toBeInstanceOf(CreateRoomDto);
    });

    it.each(refused)('refuses %s', async (_label, roomName) => {
      expect(await failingFields(validate, room({ roomName }))).toEqual(['roomName']);
    });
  });

  describe.each(['roomId', 'fromUserId'])('%s', (field) => {
    const withId = (id: unknown) => ({ ...room(), [field]: id });

    it('accepts letters, digits and every special character on the vendor list', async () => {
      for (const char of [...ALNUM, ...VENDOR_SPECIALS]) {
        await expect(validate(withId(`a${char}b`))).resolves.toBeInstanceOf(CreateRoomDto);
      }
      // All the specials at once, 24 characters.
      await expect(validate(withId(VENDOR_SPECIALS.join('')))).resolves.toBeInstanceOf(CreateRoomDto);
    });

    it.each(['*', '/', '\\', "'", '"', '|', '}', '~', '`', '\t', '\n', 'é', '会', '😀'])(
      'refuses the character %j',
      async (char) => {
        expect(await failingFields(validate, withId(`a${char}b`))).toEqual([field]);
      },
    );

    it('refuses every other printable or control ASCII character', async () => {
      const allowed = new Set([...ALNUM, ...VENDOR_SPECIALS]);
      let checked = 0;
      for (let code = 0; code < 128; code++) {
        const char = String.fromCharCode(code);
        if (allowed.has(char)) continue;
        expect(await failingFields(validate, withId(`a${char}`))).toEqual([field]);
        checked++;
      }
      expect(checked).toBe(128 - allowed.size);
    });

    it('accepts 1 and 32 characters', async () => {
      await expect(validate(withId('x'))).resolves.toBeInstanceOf(CreateRoomDto);
      await expect(validate(withId('x'.repeat(32)))).resolves.toBeInstanceOf(CreateRoomDto);
    });

    it('refuses 0 and 33 characters', async () => {
      expect(await failingFields(validate, withId(''))).toEqual([field]);
      expect(await failingFields(validate, withId('x'.repeat(33)))).toEqual([field]);
    });

    it('refuses a trailing newline after valid characters', async () => {
      expect(await failingFields(validate, withId('room\n'))).toEqual([field]);
    });

    it.each([null, 42, true, ['room'], { id: 'room' }])('refuses the non-string %j', async (id) => {
      expect(await failingFields(validate, withId(id))).toEqual([field]);
    });

    it('does not echo the refused value', async () => {
      const failure = await rejection(validate, withId('SENTINEL*value'));
      expect(JSON.stringify(failure.fieldErrors)).not.toContain('SENTINEL');
      expect(failure.message).not.toContain('SENTINEL');
    });
  });

  it('requires roomId', async () => {
    expect(await failingFields(validate, { fromUserId: 'alice' })).toEqual(['roomId']);
  });

  describe('fromUserId without a configured default operator', () => {
    it('is required, and the error names it', async () => {
      const failure = await rejection(validate, { roomId: 'room-1' });
      expect(failure.fieldErrors.map((e) => e.field)).toEqual(['fromUserId']);
      expect(failure.fieldErrors[0]!.reason).toMatch(/required/);
    });
  });

  describe('fromUserId with a configured default operator', () => {
    let withDefault: Harness;
    beforeAll(async () => {
      withDefault = await harness({ ...BASE_ENV, ZEGO_DEFAULT_FROM_USER_ID: 'operator-1' });
    });
    afterAll(() => withDefault.close());

    it('may be left out', async () => {
      const dto = (await withDefault.validate({ roomId: 'room-1' })) as CreateRoomDto;
      expect(dto).toBeInstanceOf(CreateRoomDto);
      expect(dto.fromUserId).toBeUndefined();
    });

    it.each([null, '', 'bad*id', 7])('is still checked when given (%j)', async (fromUserId) => {
      expect(await failingFields(withDefault.validate, { roomId: 'room-1', fromUserId })).toEqual([
        'fromUserId',
      ]);
    });
  });

  describe('destroyDelayTime', () => {
    it.each([0, 1, 10800])('accepts %j', async (destroyDelayTime) => {
      await expect(validate(room({ destroyDelayTime }))).resolves.toBeInstanceOf(CreateRoomDto);
    });

    it.each([-1, 10801, 1.5, '5', null, true, [5]])('refuses %j', async (destroyDelayTime) => {
      expect(await failingFields(validate, room({ destroyDelayTime }))).toEqual(['destroyDelayTime']);
    });

    it('keeps a valid value a number (no coercion)', async () => {
      const dto = (await validate(room({ destroyDelayTime: 300 }))) as CreateRoomDto;
      expect(dto.destroyDelayTime).toBe(300);
    });
  });

  describe('attributes', () => {
    it('accepts an empty list', async () => {
      await expect(validate(room({ attributes: [] }))).resolves.toBeInstanceOf(CreateRoomDto);
    });

    it('accepts 20 and refuses 21 at the default maximum', async () => {
      await expect(validate(room({ attributes: attributes(20) }))).resolves.toBeInstanceOf(CreateRoomDto);
      expect(await failingFields(validate, room({ attributes: attributes(21) }))).toEqual(['attributes']);
    });

    it('honours a configured maximum (ZEGO_MAX_ROOM_ATTRIBUTES=16)', async () => {
      const custom = await harness({ ...BASE_ENV, ZEGO_MAX_ROOM_ATTRIBUTES: '16' });
      try {
        await expect(custom.validate(room({ attributes: attributes(16) }))).resolves.toBeInstanceOf(
          CreateRoomDto,
        );
        expect(await failingFields(custom.validate, room({ attributes: attributes(17) }))).toEqual([
          'attributes',
        ]);
      } finally {
        await custom.close();
      }
    });

    it('refuses a repeated key, naming the list', async () => {
      const list = [
        { key: 'a', value: '1' },
        { key: 'b', value: '2' },
        { key: 'a', value: '3' },
      ];
      expect(await failingFields(validate, room({ attributes: list }))).toEqual(['attributes']);
    });

    it('treats keys that differ only in case as different', async () => {
      const list = [
        { key: 'a', value: '1' },
        { key: 'A', value: '2' },
      ];
      await expect(validate(room({ attributes: list }))).resolves.toBeInstanceOf(CreateRoomDto);
    });

    describe('key', () => {
      it.each([
        ['16 ASCII bytes', 'k'.repeat(16)],
        ['8 two-byte characters (16 bytes)', 'é'.repeat(8)],
        ['one byte', 'k'],
      ])('accepts %s', async (_label, key) => {
        await expect(validate(room({ attributes: [{ key, value: 'v' }] }))).resolves.toBeInstanceOf(
          CreateRoomDto,
        );
      });

      it.each([
        ['17 ASCII bytes', 'k'.repeat(17)],
        ['8 two-byte characters and one more byte (17 bytes)', `${'é'.repeat(8)}k`],
        ['6 three-byte characters (18 bytes)', '会'.repeat(6)],
        ['an empty key', ''],
        ['a lone surrogate', '\uD83D'],
        ['a number', 5],
        ['null', null],
      ])('refuses %s, naming the item', async (_label, key) => {
        const list = [{ key: 'first', value: 'v' }, { key, value: 'v' }];
        expect(await failingFields(validate, room({ attributes: list }))).toEqual(['attributes[1].key']);
      });

      it('is required', async () => {
        const list = [{ key: 'first', value: 'v' }, { value: 'v' }];
        expect(await failingFields(validate, room({ attributes: list }))).toEqual(['attributes[1].key']);
      });
    });

    describe('value', () => {
      it.each([
        ['1024 bytes', 'v'.repeat(1024)],
        ['341 three-byte characters (1023 bytes)', '会'.repeat(341)],
        ['an empty value', ''],
      ])('accepts %s', async (_label, value) => {
        await expect(validate(room({ attributes: [{ key: 'k', value }] }))).resolves.toBeInstanceOf(
          CreateRoomDto,
        );
      });

      it.each([
        ['1025 bytes', 'v'.repeat(1025)],
        ['342 three-byte characters (1026 bytes)', '会'.repeat(342)],
        ['a lone surrogate', 'v\uDFFF'],
        ['a number', 1],
        ['null', null],
      ])('refuses %s, naming the item', async (_label, value) => {
        expect(await failingFields(validate, room({ attributes: [{ key: 'k', value }] }))).toEqual([
          'attributes[0].value',
        ]);
      });

      it('is required', async () => {
        expect(await failingFields(validate, room({ attributes: [{ key: 'k' }] }))).toEqual([
          'attributes[0].value',
        ]);
      });
    });

    describe('total size of keys and values', () => {
      /** Five attributes of 1024 bytes each (2-byte key, 1022-byte value), plus `extra` bytes. */
      function fiveKiB(extra: number) {
        const list = attributes(5, (i) => ({ key: `k${i}`, value: 'v'.repeat(1022) }));
        list[4]!.value += 'v'.repeat(extra);
        return list;
      }

      it('accepts exactly 5120 bytes and refuses 5121', async () => {
        const total = (list: { key: string; value: string }[]) =>
          list.reduce((sum, a) => sum + bytes(a.key) + bytes(a.value), 0);
        expect(total(fiveKiB(0))).toBe(5120);
        expect(total(fiveKiB(1))).toBe(5121);

        await expect(validate(room({ attributes: fiveKiB(0) }))).resolves.toBeInstanceOf(CreateRoomDto);
        expect(await failingFields(validate, room({ attributes: fiveKiB(1) }))).toEqual(['attributes']);
      });

      it('counts bytes, not characters', async () => {
        // 5 keys of 2 bytes + 5 values of 511 "é" (1022 bytes): 5120 bytes but 2565 characters.
        const list = attributes(5, (i) => ({ key: `k${i}`, value: 'é'.repeat(511) }));
        await expect(validate(room({ attributes: list }))).resolves.toBeInstanceOf(CreateRoomDto);
        list[0]!.value += 'é'; // 1024 bytes for this value, 5122 in total
        expect(await failingFields(validate, room({ attributes: list }))).toEqual(['attributes']);
      });
    });

    describe('autoDelete', () => {
      it.each([true, false])('accepts %j', async (autoDelete) => {
        const dto = (await validate(
          room({ attributes: [{ key: 'k', value: 'v', autoDelete }] }),
        )) as CreateRoomDto;
        expect(dto.attributes?.[0]?.autoDelete).toBe(autoDelete);
      });

      it.each([1, 0, 'true', null])('refuses %j', async (autoDelete) => {
        const list = [{ key: 'k', value: 'v', autoDelete }];
        expect(await failingFields(validate, room({ attributes: list }))).toEqual([
          'attributes[0].autoDelete',
        ]);
      });
    });

    it.each([1, 'text', true, null])('refuses the non-object item %j, naming it', async (item) => {
      const list = [{ key: 'a', value: '1' }, item];
      expect(await failingFields(validate, room({ attributes: list }))).toEqual(['attributes[1]']);
    });

    it.each([[[]], [[{ key: 'a', value: '1' }]]])('refuses an array as an item (%j)', async (item) => {
      const list = [{ key: 'b', value: '2' }, item];
      expect(await failingFields(validate, room({ attributes: list }))).toEqual(['attributes']);
    });

    it.each([{}, 'a=b', 3, null, { 0: { key: 'a', value: 'b' } }])(
      'refuses the non-array %j',
      async (list) => {
        expect(await failingFields(validate, room({ attributes: list }))).toEqual(['attributes']);
      },
    );
  });

  describe('unknown fields', () => {
    it('refuses an unknown top-level field', async () => {
      expect(await failingFields(validate, room({ roomType: 'public' }))).toEqual(['roomType']);
    });

    it('refuses an unknown field of an attribute, naming its path', async () => {
      const list = [{ key: 'a', value: '1' }, { key: 'b', value: '2', ttl: 5 }];
      expect(await failingFields(validate, room({ attributes: list }))).toEqual(['attributes[1].ttl']);
    });

    it('refuses the vendor spelling of a known field', async () => {
      expect(await failingFields(validate, room({ RoomName: 'x' }))).toEqual(['RoomName']);
    });

    it.each(['__proto__', 'constructor', 'prototype'])(
      'refuses %s given as an own JSON key at the top level',
      async (name) => {
        const body = JSON.parse(`{"roomId":"room-1","fromUserId":"alice","${name}":{"polluted":true}}`);
        expect(Object.hasOwn(body, name)).toBe(true);
        const fields = await failingFields(validate, body);
        expect(fields).toEqual([name]);
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      },
    );

    it.each(['__proto__', 'constructor', 'prototype'])(
      'refuses %s given as an own JSON key of an attribute',
      async (name) => {
        const body = JSON.parse(
          `{"roomId":"room-1","fromUserId":"alice","attributes":[{"key":"a","value":"1"},{"key":"b","value":"2","${name}":{"polluted":true}}]}`,
        );
        expect(await failingFields(validate, body)).toEqual([`attributes[1].${name}`]);
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      },
    );
  });

  it('names only a value refused as a whole, not a stripped key inside it', async () => {
    const notAList = JSON.parse('{"roomId":"room-1","fromUserId":"alice","attributes":{"toString":{}}}');
    expect(await failingFields(validate, notAList)).toEqual(['attributes']);
    const notText = JSON.parse('{"roomId":"room-1","fromUserId":"alice","attributes":[{"key":{"valueOf":1},"value":"v"}]}');
    expect(await failingFields(validate, notText)).toEqual(['attributes[0].key']);
  });

  it('reports a stripped key together with the other problems of the body', async () => {
    const body = JSON.parse('{"roomId":"bad/room","constructor":1,"attributes":[{"key":"","value":"v","__proto__":{}}]}');
    expect(await failingFields(validate, body)).toEqual(
      ['attributes[0].__proto__', 'attributes[0].key', 'constructor', 'fromUserId', 'roomId'].sort(),
    );
  });

  it('reports every problem of one body together', async () => {
    const body = JSON.parse(
      JSON.stringify({
        roomId: 'bad/room',
        roomName: 'x'.repeat(65),
        destroyDelayTime: -1,
        attributes: [
          { key: 'ok', value: 'fine' },
          { key: '', value: 'v' },
          { key: 'c', value: 'v'.repeat(1025), autoDelete: 1 },
        ],
        surprise: true,
      }),
    );
    expect(await failingFields(validate, body)).toEqual(
      [
        'roomId',
        'fromUserId',
        'roomName',
        'destroyDelayTime',
        'attributes[1].key',
        'attributes[2].value',
        'attributes[2].autoDelete',
        'surprise',
      ].sort(),
    );
  });
});
