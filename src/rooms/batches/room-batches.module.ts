import { BullModule } from '@nestjs/bullmq';
import {
  type DynamicModule,
  Inject,
  Injectable,
  Logger,
  Module,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  type Provider,
} from '@nestjs/common';
import { Registry } from 'prom-client';
import { ApiKeyStore } from '../../auth/api-key-store.js';
import { AuthModule } from '../../auth/auth.module.js';
import { APP_CONFIG } from '../../config/config.module.js';
import { IdempotencyModule } from '../../idempotency/idempotency.module.js';
import { GracefulShutdown } from '../../lifecycle/graceful-shutdown.js';
import { LoggingModule } from '../../logging/logging.module.js';
import { registerBatchMetrics } from '../../metrics/batch.metrics.js';
import { EvictionPolicyWatch } from '../../redis/eviction-policy-watch.js';
import { connectRedis, type RedisClient } from '../../redis/redis-connection.js';
import { OutboundRateLimiter } from '../../rate-limit/outbound-rate-limiter.js';
import { RedisKeys } from '../../redis/redis-keys.js';
import { REDIS } from '../../redis/redis.module.js';
import type { RedisSettings } from '../../redis/redis.settings.js';
import { RoomsModule } from '../rooms.module.js';
import { BatchCallbackSender } from './batch-callback-sender.js';
import { BatchCallbacks } from './batch-callbacks.js';
import { BatchEvents } from './batch-events.js';
import { BATCH_QUEUE, type BatchQueue } from './batch-queue.js';
import { BatchRoomRunner } from './batch-room-runner.js';
import { BATCH_STORE, type BatchStore } from './batch-store.js';
import type { BatchSettings } from './batches.settings.js';
import { BullmqBatchQueue } from './bullmq-batch-queue.js';
import { InProcessBatchCallbacks } from './in-process-batch-callbacks.js';
import { InProcessBatchQueue } from './in-process-batch-queue.js';
import { InProcessBatchStore } from './in-process-batch-store.js';
import { BatchCallbackProcessor, QueuedBatchCallbacks } from './queued-batch-callbacks.js';
import { RedisBatchStore } from './redis-batch-store.js';
import { RoomBatchesController } from './room-batches.controller.js';
import { RoomBatchesService } from './room-batches.service.js';
import { BATCH_CALLBACK_QUEUE } from '../../redis/redis-keys.js';

interface BatchConfig {
  readonly batches: BatchSettings;
  readonly redis?: RedisSettings;
}

/** A batch that never ends (its rooms lost with Redis's data) is still forgotten this long after it began. */
const UNFINISHED_LIFETIME_S = 30 * 86_400;

/** BullMQ's own connections: a fail-fast one to add rooms, a waiting one for workers (BullMQ duplicates it per worker). */
const QUEUE_PRODUCER = Symbol('QUEUE_PRODUCER');
const QUEUE_WORKER = Symbol('QUEUE_WORKER');

/**
 * Starts the work on this replica once the application is up, stops taking rooms at the first
 * shutdown signal (handing back those still waiting for a slot), and puts batches in /metrics.
 */
@Injectable()
class BatchWork implements OnApplicationBootstrap, OnApplicationShutdown {
  private started = false;
  private stopping?: Promise<void>;

  constructor(
    @Inject(BATCH_QUEUE) private readonly queue: BatchQueue,
    private readonly runner: BatchRoomRunner,
    private readonly callbacks: BatchCallbacks,
    private readonly keys: ApiKeyStore,
    private readonly limiter: OutboundRateLimiter,
    shutdown: GracefulShutdown,
    registry: Registry,
    events: BatchEvents,
    @Inject(EvictionPolicyWatch) private readonly eviction: EvictionPolicyWatch | null,
  ) {
    registerBatchMetrics(registry, events, queue, eviction ?? undefined);
    shutdown.onShutdownStart(() => this.stop());
  }

  /**
   * A queue in Redis is worked once the vendor budget is shared: a replica that has not reached the
   * fleet's scheduler yet would send on its own share beside a fleet using the whole budget.
   */
  onApplicationBootstrap(): void {
    this.eviction?.start();
    if (!this.queue.durable || this.limiter.mode === 'shared') return this.startWork();
    this.limiter.onModeChange(({ mode }) => {
      if (mode === 'shared') this.startWork();
    });
  }

  private startWork(): void {
    if (this.started || this.stopping) return;
    this.started = true;
    this.queue.start(this.runner, () => this.keys.clientIds());
  }

  async onApplicationShutdown(): Promise<void> {
    await this.stop();
  }

  private stop(): Promise<void> {
    this.eviction?.stop();
    this.stopping ??= Promise.all([this.queue.stop(), this.callbacks.stop()]).then(() => undefined);
    return this.stopping;
  }
}

/** Closes BullMQ's connections once everything that used them has stopped. */
@Injectable()
class QueueConnections implements OnApplicationShutdown {
  constructor(
    @Inject(QUEUE_PRODUCER) private readonly producer: RedisClient,
    @Inject(QUEUE_WORKER) private readonly worker: RedisClient,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([this.producer, this.worker].map((redis) => redis.quit().catch(() => redis.disconnect())));
  }
}

function sharedProviders(connections: { producer: RedisClient; worker: RedisClient }): Provider[] {
  return [
    { provide: QUEUE_PRODUCER, useValue: connections.producer },
    { provide: QUEUE_WORKER, useValue: connections.worker },
    QueueConnections,
    {
      provide: BATCH_STORE,
      inject: [REDIS, RedisKeys, APP_CONFIG],
      useFactory: (client: RedisClient, keys: RedisKeys, config: BatchConfig): BatchStore =>
        new RedisBatchStore(client, keys, { ttlSeconds: config.batches.ttlSeconds, unfinishedLifetimeSeconds: UNFINISHED_LIFETIME_S }),
    },
    {
      provide: BATCH_QUEUE,
      inject: [QUEUE_PRODUCER, QUEUE_WORKER, RedisKeys, APP_CONFIG],
      useFactory: (producer: RedisClient, worker: RedisClient, keys: RedisKeys, config: BatchConfig): BatchQueue =>
        new BullmqBatchQueue({ producer, worker }, keys, config.batches),
    },
    { provide: BatchCallbacks, useClass: QueuedBatchCallbacks },
    BatchCallbackProcessor,
    { provide: EvictionPolicyWatch, inject: [REDIS], useFactory: (client: RedisClient) => new EvictionPolicyWatch(client) },
  ];
}

function inProcessProviders(): Provider[] {
  return [
    {
      provide: BATCH_STORE,
      inject: [APP_CONFIG],
      useFactory: (config: BatchConfig): BatchStore =>
        new InProcessBatchStore({ ttlSeconds: config.batches.ttlSeconds, unfinishedLifetimeSeconds: UNFINISHED_LIFETIME_S }),
    },
    {
      provide: BATCH_QUEUE,
      inject: [APP_CONFIG],
      useFactory: (config: BatchConfig): BatchQueue => new InProcessBatchQueue(config.batches),
    },
    {
      provide: BatchCallbacks,
      inject: [BATCH_STORE, BatchEvents, BatchCallbackSender],
      useFactory: (store: BatchStore, events: BatchEvents, sender: BatchCallbackSender) => new InProcessBatchCallbacks(store, events, sender),
    },
    { provide: EvictionPolicyWatch, useValue: null },
  ];
}

/**
 * POST/GET/DELETE /rooms/batches and the work behind them. With Redis: batches and their rooms in
 * Redis, rooms and callbacks queued on BullMQ (through @nestjs/bullmq, on connections of its own),
 * worked by every replica. Without Redis (the local quick start): the same in this process, not
 * durable.
 */
@Module({})
export class RoomBatchesModule {
  static forRoot(redis: RedisSettings | undefined): DynamicModule {
    const logger = new Logger('Redis');
    const connections = redis && { producer: connectRedis(redis, logger, 'queue-producer'), worker: connectRedis(redis, logger, 'queue-worker') };
    const bull = connections
      ? [
          BullModule.forRoot({ connection: connections.worker, prefix: new RedisKeys(redis.keyPrefix).batchQueuePrefix }),
          BullModule.registerQueue({ name: BATCH_CALLBACK_QUEUE }),
        ]
      : [];
    return {
      module: RoomBatchesModule,
      imports: [AuthModule, IdempotencyModule, LoggingModule, RoomsModule, ...bull],
      controllers: [RoomBatchesController],
      providers: [
        BatchEvents,
        BatchCallbackSender,
        BatchRoomRunner,
        RoomBatchesService,
        BatchWork,
        ...(connections ? sharedProviders(connections) : inProcessProviders()),
      ],
    };
  }
}
