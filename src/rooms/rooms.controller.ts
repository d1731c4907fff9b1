import { Body, Controller, HttpCode, HttpStatus, Post, Req, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { ApiKeyGuard, type AuthenticatedRequest } from '../auth/api-key.guard.js';
import { JsonBodyGuard } from '../http/json-body.guard.js';
import { IdempotencyService } from '../idempotency/idempotency.service.js';
import { ClientQuotaGuard } from '../rate-limit/client-quota.guard.js';
import { CreateRoomDto } from './dto/create-room.dto.js';
import type { RoomCreatedDto } from './dto/room-created.dto.js';
import { CreateRoomApiDocs } from './create-room.api-docs.js';
import { RoomsService } from './rooms.service.js';

@Controller('rooms')
@ApiTags('rooms')
@ApiBearerAuth('api-key')
// Order matters: who is calling, then their quota, then whether the body is worth reading.
@UseGuards(ApiKeyGuard, ClientQuotaGuard, JsonBodyGuard)
export class RoomsController {
  constructor(
    private readonly rooms: RoomsService,
    private readonly idempotency: IdempotencyService,
  ) {}

  @Post()
  @HttpCode(HttpStatus.CREATED)
  @CreateRoomApiDocs()
  create(@Body() dto: CreateRoomDto, @Req() request: AuthenticatedRequest): Promise<RoomCreatedDto> {
    // After the guards and the body's validation: bad or unauthenticated requests never reach the store.
    return this.idempotency.run({
      request,
      body: dto,
      perform: () => this.rooms.createRoom(dto, disconnectSignal(request)),
      recover: (error) => this.rooms.recoveredRoom(dto, error),
    });
  }
}

/** Fires when the caller hangs up before we answered, so its queued work can be dropped. */
function disconnectSignal(request: Request): AbortSignal {
  const controller = new AbortController();
  const response = request.res!;
  response.once('close', () => {
    if (!response.writableFinished) controller.abort();
  });
  return controller.signal;
}
