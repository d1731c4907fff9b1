import { Injectable } from '@nestjs/common';
import type { BatchRoomStatus, BatchStatus } from './room-batch.js';

export interface BatchAcceptedEvent {
  client: string;
  rooms: number;
}

export interface BatchRoomEvent {
  client: string;
  /** `sent`: a vendor call went out for it (once per attempt); the rest: how it ended. */
  kind: 'sent' | Exclude<BatchRoomStatus, 'pending'>;
}

export interface BatchEndedEvent {
  client: string;
  status: Extract<BatchStatus, 'done' | 'cancelled'>;
  /** From submission to the last room's end. */
  durationMs: number;
}

/** Where metrics learn what batches do, without the batch code knowing about metrics. */
@Injectable()
export class BatchEvents {
  private readonly accepted: ((event: BatchAcceptedEvent) => void)[] = [];
  private readonly roomEvents: ((event: BatchRoomEvent) => void)[] = [];
  private readonly ended: ((event: BatchEndedEvent) => void)[] = [];

  onAccepted(listener: (event: BatchAcceptedEvent) => void): void {
    this.accepted.push(listener);
  }

  onRoom(listener: (event: BatchRoomEvent) => void): void {
    this.roomEvents.push(listener);
  }

  onEnded(listener: (event: BatchEndedEvent) => void): void {
    this.ended.push(listener);
  }

  batchAccepted(event: BatchAcceptedEvent): void {
    this.accepted.forEach((listener) => listener(event));
  }

  room(event: BatchRoomEvent): void {
    this.roomEvents.forEach((listener) => listener(event));
  }

  batchEnded(event: BatchEndedEvent): void {
    this.ended.forEach((listener) => listener(event));
  }
}
