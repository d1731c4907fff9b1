import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  HttpStatus,
  Param,
  Post,
  Query,
  UseGuards,
  UseInterceptors,
} from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { ApiKeyGuard, CallingClient } from '../../auth/api-key.guard.js';
import { JsonBodyGuard } from '../../http/json-body.guard.js';
import { IdempotencyInterceptor } from '../../idempotency/idempotency.interceptor.js';
import { ClientQuotaGuard } from '../../rate-limit/client-quota.guard.js';
import { BatchLocationInterceptor, RequestIdOf } from './batch-location.interceptor.js';
import { CancelBatchApiDocs, GetBatchApiDocs, SubmitBatchApiDocs } from './room-batches.api-docs.js';
import type { BatchSummary } from './room-batch.js';
import { CreateRoomBatchDto } from './dto/create-room-batch.dto.js';
import { readRoomsQuery, RoomBatchesService, type BatchView } from './room-batches.service.js';

@Controller('rooms/batches')
@ApiTags('room batches')
@ApiBearerAuth('api-key')
// As on POST /rooms: who is calling, then their quota (then, for a body, whether it is worth reading).
@UseGuards(ApiKeyGuard, ClientQuotaGuard)
export class RoomBatchesController {
  constructor(private readonly batches: RoomBatchesService) {}

  @Post()
  @UseGuards(JsonBodyGuard)
  @HttpCode(HttpStatus.ACCEPTED)
  // The Location header is set outside the idempotency interceptor, so a replay carries it too.
  @UseInterceptors(BatchLocationInterceptor, IdempotencyInterceptor)
  @SubmitBatchApiDocs()
  submit(@Body() dto: CreateRoomBatchDto, @CallingClient() client: string, @RequestIdOf() requestId: string): Promise<BatchSummary> {
    return this.batches.submit(client, dto, requestId);
  }

  @Get(':batchId')
  @GetBatchApiDocs()
  view(@Param('batchId') batchId: string, @Query() query: Record<string, unknown>, @CallingClient() client: string): Promise<BatchView> {
    return this.batches.view(client, batchId, readRoomsQuery(query));
  }

  @Delete(':batchId')
  @HttpCode(HttpStatus.OK)
  @CancelBatchApiDocs()
  cancel(@Param('batchId') batchId: string, @Query() query: Record<string, unknown>, @CallingClient() client: string): Promise<BatchView> {
    return this.batches.cancel(client, batchId, readRoomsQuery(query));
  }
}
