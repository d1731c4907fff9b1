import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { ZimCallError } from '../zego/zim-call-error.js';
import { ZimClient } from '../zego/zim-client.js';
import type { CreateRoomDto } from './dto/create-room.dto.js';
import type { RoomCreatedDto } from './dto/room-created.dto.js';

/** The CreateRoom body exactly as the vendor documents it. */
export interface ZimCreateRoomBody {
  FromUserId: string;
  RoomId: string;
  RoomName?: string;
  DestroyDelayTime?: number;
  Attributes?: { Key: string; Value: string; AutoDelete?: 0 | 1 }[];
}

/** Our camelCase API on one side, the vendor's PascalCase on the other: mapped here only. */
@Injectable()
export class RoomsService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly zim: ZimClient,
  ) {}

  async createRoom(dto: CreateRoomDto, signal?: AbortSignal): Promise<RoomCreatedDto> {
    let reply;
    try {
      reply = await this.zim.call('CreateRoom', this.toVendorBody(dto), { signal });
    } catch (error) {
      // A retry that found the room after a reset: the reset attempt most likely created it.
      const recovered =
        error instanceof ZimCallError && error.earlierAttemptMayHaveActed ? this.recoveredRoom(dto, error) : undefined;
      if (recovered) return recovered;
      throw error;
    }
    return {
      roomId: dto.roomId,
      attributeSeq: typeof reply.AttributeSeq === 'number' ? reply.AttributeSeq : 0,
      zegoRequestId: reply.RequestId === undefined ? '' : String(reply.RequestId),
    };
  }

  /**
   * When the vendor says the room exists after an attempt that may have created it (an
   * Idempotency-Key repeat of a timed-out (504) request, or a retry after a connection reset), that
   * attempt created it, so the answer is that creation's 201. The vendor's AttributeSeq of that
   * creation is lost; one per attribute sent is what creating sets.
   */
  recoveredRoom(dto: CreateRoomDto, error: unknown): RoomCreatedDto | undefined {
    if (!(error instanceof ZimCallError) || error.outcome !== 'room-exists') return undefined;
    return {
      roomId: dto.roomId,
      attributeSeq: dto.attributes?.length ?? 0,
      zegoRequestId: error.details.zegoRequestId ?? '',
      recovered: true,
    };
  }

  toVendorBody(dto: CreateRoomDto): ZimCreateRoomBody {
    // Validation guarantees an operator: the request's or the configured default.
    const fromUserId = dto.fromUserId ?? this.config.zego.defaultFromUserId!;
    return {
      FromUserId: fromUserId,
      RoomId: dto.roomId,
      ...(dto.roomName !== undefined && { RoomName: dto.roomName }),
      ...(dto.destroyDelayTime !== undefined && { DestroyDelayTime: dto.destroyDelayTime }),
      ...(dto.attributes !== undefined && {
        Attributes: dto.attributes.map((attribute) => ({
          Key: attribute.key,
          Value: attribute.value,
          ...(attribute.autoDelete !== undefined && { AutoDelete: attribute.autoDelete ? 1 : 0 }),
        })),
      }),
    };
  }
}
