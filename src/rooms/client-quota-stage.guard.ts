import { type ExecutionContext, Injectable } from '@nestjs/common';
import { inRequestStage } from '../http/request-progress.js';
import { ClientQuotaGuard } from '../rate-limit/client-quota.guard.js';

/**
 * ClientQuotaGuard with its wait (the quota's Redis call) named as the request's stage, so a
 * request overdue there says `client quota`. The quota itself is ClientQuotaGuard's, unchanged.
 */
@Injectable()
export class ClientQuotaStageGuard extends ClientQuotaGuard {
  override canActivate(context: ExecutionContext): Promise<boolean> {
    return inRequestStage('client quota', () => super.canActivate(context));
  }
}
