import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG } from '../config/config.module.js';
import { ZimCallError } from '../zego/zim-call-error.js';
import { ZimClient, type ZimCallOptions } from '../zego/zim-client.js';
import type { ZegoSettings } from '../zego/zego.settings.js';
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
    @Inject(APP_CONFIG) private readonly config: { readonly zego: ZegoSettings },
    private readonly zim: ZimClient,
  ) {}

  async createRoom(dto: CreateRoomDto, options: ZimCallOptions = {}): Promise<RoomCreatedDto> {
    let reply;
    try {
      reply = await this.zim.call('CreateRoom', this.toVendorBody(dto), options);
    } catch (error) {
      const recovered = recoveredRoom(dto, error);
      if (recovered) return recovered;
      throw error;
    }
    return {
      roomId: dto.roomId,
      attributeSeq: typeof reply.AttributeSeq === 'number' ? reply.AttributeSeq : 0,
      zegoRequestId: reply.RequestId === undefined ? '' : String(reply.RequestId),
    };
  }

  private toVendorBody(dto: CreateRoomDto): ZimCreateRoomBody {
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

/**
 * The one place that reads "the room exists" as our own success: when an earlier attempt may have
 * created it (an Idempotency-Key repeat of a timed-out (504) request, or a retry after a
 * connection reset), that attempt did, so the answer is that creation's 201. The vendor's
 * AttributeSeq of that creation is lost; one per attribute sent is what creating sets.
 */
function recoveredRoom(dto: CreateRoomDto, error: unknown): RoomCreatedDto | undefined {
  if (!(error instanceof ZimCallError) || !error.earlierAttemptMayHaveActed || error.outcome !== 'room-exists') {
    return undefined;
  }
  return {
    roomId: dto.roomId,
    attributeSeq: dto.attributes?.length ?? 0,
    zegoRequestId: error.details.zegoRequestId ?? '',
    recovered: true,
  };
}
