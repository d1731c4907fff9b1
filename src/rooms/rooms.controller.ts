import { Body, Controller, HttpCode, HttpStatus, Post, UseGuards, UseInterceptors } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { ApiKeyGuard } from '../auth/api-key.guard.js';
import { ClientGone } from '../http/client-went-away.js';
import { JsonBodyGuard } from '../http/json-body.guard.js';
import { IdempotencyInterceptor, ResumesAmbiguousAttempt } from '../idempotency/idempotency.interceptor.js';
import { CallPriority, PriorityGuard } from '../rate-limit/priority.guard.js';
import type { Priority } from '../rate-limit/rate-limit.settings.js';
import { CallingClient } from '../auth/api-key.guard.js';
import { CreateRoomDto } from './dto/create-room.dto.js';
import type { RoomCreatedDto } from './dto/room-created.dto.js';
import { ClientQuotaStageGuard } from './client-quota-stage.guard.js';
import { CreateRoomApiDocs } from './create-room.api-docs.js';
import { RoomsService } from './rooms.service.js';

@Controller('rooms')
@ApiTags('rooms')
@ApiBearerAuth('api-key')
// Order matters: who is calling, then their quota and level, then whether the body is worth reading.
@UseGuards(ApiKeyGuard, ClientQuotaStageGuard, PriorityGuard, JsonBodyGuard)
export class RoomsController {
  constructor(private readonly rooms: RoomsService) {}

  @Post()
  @HttpCode(HttpStatus.CREATED)
  @UseInterceptors(IdempotencyInterceptor)
  @CreateRoomApiDocs()
  create(
    @Body() dto: CreateRoomDto,
    @ClientGone() signal: AbortSignal,
    @ResumesAmbiguousAttempt() earlierAttemptMayHaveActed: boolean,
    @CallingClient() client: string,
    @CallPriority() priority: Priority,
  ): Promise<RoomCreatedDto> {
    return this.rooms.createRoom(dto, { signal, earlierAttemptMayHaveActed, client, priority });
  }
}
