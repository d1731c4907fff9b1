import { Matches } from 'class-validator';
import { ZIM_LIMITS } from '../../zego/zim-limits.js';

/** A user or room id as the vendor accepts it. */
export function IsZimId(): PropertyDecorator {
  return Matches(ZIM_LIMITS.idPattern, { message: `must be ${ZIM_LIMITS.idAllowedDescription}` });
}
