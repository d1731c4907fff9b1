import { Module } from '@nestjs/common';
import { IdempotencyService } from './idempotency.service.js';

/** The Idempotency-Key store: Redis (REDIS, global) when configured, in process otherwise. */
@Module({
  providers: [IdempotencyService],
  exports: [IdempotencyService],
})
export class IdempotencyModule {}
