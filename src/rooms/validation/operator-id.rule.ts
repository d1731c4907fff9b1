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

/**
 * fromUserId may be left out only when ZEGO_DEFAULT_FROM_USER_ID is configured; checked with the
 * other fields so one 400 names every problem.
 */
@Injectable()
@ValidatorConstraint({ name: 'operatorId' })
export class OperatorIdRule implements ValidatorConstraintInterface {
  constructor(@Inject(APP_CONFIG) private readonly config: { readonly zego: ZegoSettings }) {}

  validate(value: unknown): boolean {
    if (value === undefined) return this.config.zego.defaultFromUserId !== undefined;
    return typeof value === 'string' && ZIM_LIMITS.idPattern.test(value);
  }

  defaultMessage(args: ValidationArguments): string {
    return args.value === undefined
      ? 'is required: this gateway has no default operator (ZEGO_DEFAULT_FROM_USER_ID)'
      : `must be ${ZIM_LIMITS.idAllowedDescription}`;
  }
}

export function ValidOperatorId(): PropertyDecorator {
  return (target: object, propertyName: string | symbol): void => {
    registerDecorator({
      target: target.constructor,
      propertyName: String(propertyName),
      validator: OperatorIdRule,
    });
  };
}
