import { Inject, Injectable } from '@nestjs/common';
import {
  registerDecorator,
  type ValidationArguments,
  ValidatorConstraint,
  type ValidatorConstraintInterface,
} from 'class-validator';
import { APP_CONFIG } from '../../config/config.module.js';
import type { ZegoSettings } from '../../zego/zego.settings.js';
import { ZIM_LIMITS } from '../../zego/zim-limits.js';
import { utf8Bytes } from './utf8-byte-length.js';

interface AttributeLike {
  key?: unknown;
  value?: unknown;
}

/**
 * Rules over the whole attribute list: the configured maximum count (ZEGO_MAX_ROOM_ATTRIBUTES),
 * unique keys, and the vendor's total of 5120 bytes over all keys and values. Resolved through
 * Nest's container (class-validator's useContainer) so the maximum comes from configuration.
 */
@Injectable()
@ValidatorConstraint({ name: 'roomAttributes' })
export class RoomAttributesRules implements ValidatorConstraintInterface {
  constructor(@Inject(APP_CONFIG) private readonly config: { readonly zego: ZegoSettings }) {}

  validate(value: unknown): boolean {
    return this.problem(value) === undefined;
  }

  defaultMessage(args: ValidationArguments): string {
    return this.problem(args.value) ?? 'is invalid';
  }

  private problem(value: unknown): string | undefined {
    if (!Array.isArray(value)) return undefined; // @IsArray reports this
    const max = this.config.zego.maxRoomAttributes;
    if (value.length > max) return `must hold at most ${max} attributes`;
    // class-validator walks into a nested array instead of refusing it as an item.
    const nested = value.findIndex((item) => Array.isArray(item));
    if (nested >= 0) return `must hold objects, not arrays (item ${nested} is an array)`;
    const items = value.filter((item): item is AttributeLike => typeof item === 'object' && item !== null);
    const keys = items.map((item) => item.key).filter((key): key is string => typeof key === 'string');
    // The key itself is not quoted back: the 400 never echoes submitted values.
    if (new Set(keys).size !== keys.length) return 'must not repeat a key';
    const total = items.reduce(
      (sum, item) => sum + textBytes(item.key) + textBytes(item.value),
      0,
    );
    if (total > ZIM_LIMITS.attributesTotalMaxBytes) {
      return `keys and values together must be at most ${ZIM_LIMITS.attributesTotalMaxBytes} UTF-8 bytes (got ${total})`;
    }
    return undefined;
  }
}

export function ValidRoomAttributes(): PropertyDecorator {
  return (target: object, propertyName: string | symbol): void => {
    registerDecorator({
      target: target.constructor,
      propertyName: String(propertyName),
      validator: RoomAttributesRules,
    });
  };
}

function textBytes(value: unknown): number {
  return typeof value === 'string' ? utf8Bytes(value) : 0;
}
