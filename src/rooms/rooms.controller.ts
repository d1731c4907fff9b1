import { Body, Controller, HttpCode, HttpStatus, Post, Req, UseGuards } from '@nestjs/common';
import type { Request } from 'express';
import { ApiKeyGuard } from '../auth/api-key.guard.js';
import { JsonBodyGuard } from '../http/json-body.guard.js';
import { ClientQuotaGuard } from '../rate-limit/client-quota.guard.js';
import { CreateRoomDto } from './dto/create-room.dto.js';
import type { RoomCreatedDto } from './dto/room-created.dto.js';
import { RoomsService } from './rooms.service.js';

@Controller('rooms')
// Order matters: who is calling, then their quota, then whether the body is worth reading.
@UseGuards(ApiKeyGuard, ClientQuotaGuard, JsonBodyGuard)
export class RoomsController {
  constructor(private readonly rooms: RoomsService) {}

  @Post()
  @HttpCode(HttpStatus.CREATED)
  create(@Body() dto: CreateRoomDto, @Req() request: Request): Promise<RoomCreatedDto> {
    return this.rooms.createRoom(dto, disconnectSignal(request));
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
