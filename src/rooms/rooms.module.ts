import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { IdempotencyModule } from '../idempotency/idempotency.module.js';
import { ZegoModule } from '../zego/zego.module.js';
import { RoomsController } from './rooms.controller.js';
import { RoomsService } from './rooms.service.js';
import { OperatorIdRule } from './validation/operator-id.rule.js';
import { RoomAttributesRules } from './validation/room-attributes.rules.js';

@Module({
  imports: [AuthModule, IdempotencyModule, ZegoModule],
  controllers: [RoomsController],
  providers: [RoomsService, RoomAttributesRules, OperatorIdRule],
  exports: [RoomsService],
})
export class RoomsModule {}
