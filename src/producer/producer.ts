import { isDeepStrictEqual } from 'node:util';
import type { Queue } from 'bullmq';
import { loadConfig, type Config } from '../config.js';
import { createDbClient, type DbClient } from '../db/client.js';
import { changeEndpointActive, findEndpoint } from '../db/endpoints.js';
import type { EndpointRow } from '../db/schema.js';
import { createOperatorEvents, type OperatorEvents } from '../delivery/operatorEvents.js';
import type { Logger } from '../logger.js';
import { findMessageByIdempotencyKey, insertMessage, markMessageEnqueued } from '../db/messages.js';
import type { MessageRow } from '../db/schema.js';
import { HookfleetError } from '../errors.js';
import { newId } from '../ids.js';
import { addMessageJobs } from '../jobs.js';
import { ownerPlaces, type OwnerShares } from '../delivery/ownerQueue.js';
import { Lifecycle } from '../lifecycle.js';
import { createQueueBackend, type QueueBackend } from '../queueBackend.js';
import { PRODUCER_REDIS_WAIT_MS, type RedisClient } from '../redis.js';
import {
  closeShardedQueue,
  openMessageQueues,
  recordQueueShards,
  type ShardedQueue,
} from '../queueShards.js';
import { redisUnavailable } from '../unavailable.js';
import { MessageBatcher } from './messageBatcher.js';
import { assertSameOwner } from './ownerScope.js';
import { sendInputSchema, parseInput, type SendInput } from './sendInput.js';

/** Event type of a test event unless the caller names one. */
export const TEST_EVENT_TYPE = 'hookfleet.test';

export interface ProducerOptions {
  /** Settings; default: read from the environment by loadConfig(). */
  config?: Config;
  /** An open database client to use instead of one made from config.databaseUrl (not closed by close()). */
  dbClient?: DbClient;
  /** A Redis connection to use instead of one made from config.redis (not closed by close()). */
  redis?: RedisClient;
  /**
   * Where the queues live (not closed by close()). Default: the one HOOKFLEET_QUEUE_BACKEND
   * names, Redis unless it says `postgres` (then on DATABASE_URL).
   */
  backend?: QueueBackend;
  /** Where the Producer logs operational events it publishes and failures to; default nowhere. */
  logger?: Logger;
  /**
   * Most sends waiting to be stored while a batch is written; past it send() fails at once with
   * 503 `overloaded`. Default 10,000.
   */
  maxQueuedSends?: number;
  /**
   * Most payload bytes of the sends waiting to be stored; past it send() fails at once with 503
   * `overloaded`. Default: `config.sendQueueMaxBytes` (HOOKFLEET_SEND_QUEUE_MAX_BYTES, 64 MiB).
   */
  maxQueuedSendBytes?: number;
}

export interface SendResult {
  /** The message id, sent to receivers as `webhook-id`. */
  id: string;
  /** How many deliveries (one per endpoint) the message fanned out to. */
  deliveries: number;
  endpointIds: string[];
  /** True when the idempotency key had been used before and nothing new was enqueued. */
  duplicate: boolean;
}

/**
 * Enqueues messages for delivery: `send` stores a message with its body and the active endpoints
 * subscribed to its event type, and adds one fan-out job to the `messages` queue; a worker makes
 * the deliveries. Concurrent sends are stored and enqueued together, a batch at a time
 * (messageBatcher.ts).
 */
export class Producer {
  private readonly config: Config;
  private readonly dbClient: DbClient;
  private readonly backend: QueueBackend;
  private readonly queue: ShardedQueue;
  private readonly messagesShards: ShardedQueue;
  /** Recording the number of shards in use, once, before the first enqueue (queueShards.ts). */
  private shardsRecorded: Promise<unknown> | undefined;
  private readonly batcher: MessageBatcher;
  private readonly events: OperatorEvents;
  /** What close() closes, in reverse order: the batcher, the queues, then the connections it opened. */
  private readonly life = new Lifecycle();

  constructor(options: ProducerOptions = {}) {
    this.config = options.config ?? loadConfig();
    if (options.dbClient) {
      this.dbClient = options.dbClient;
    } else {
      if (this.config.databaseUrl === undefined) {
        throw new HookfleetError(
          'config_missing',
          'the Producer needs DATABASE_URL (or a dbClient)',
        );
      }
      this.dbClient = this.life.add('database', createDbClient(this.config.databaseUrl), (c) =>
        c.close(),
      );
    }
    this.backend =
      options.backend ??
      this.life.add(
        'queue backend',
        createQueueBackend(this.config, undefined, {
          producerRedis: options.redis,
          databaseUrl: this.dbClient.url,
        }),
        (b) => b.close(),
      );
    const queues = openMessageQueues(this.backend, this.config);
    this.queue = this.life.add('deliveries queue', queues.deliveries, closeShardedQueue);
    this.messagesShards = this.life.add('messages queue', queues.messages, closeShardedQueue);
    // Connection errors reach each caller of send() as `redis_unavailable`; without a listener
    // BullMQ prints every failed reconnection attempt to stderr.
    this.queue.on('error', () => {});
    this.messagesShards.on('error', () => {});
    this.events = createOperatorEvents({
      sql: this.dbClient.sql,
      queue: this.messagesShards,
      config: this.config,
      ...(options.logger && { logger: options.logger }),
    });
    this.batcher = this.life.add(
      'message batcher',
      new MessageBatcher({
        sql: this.dbClient.sql,
        queue: this.messagesShards,
        owners: this.ownerShares(),
        whyRedisUnavailable: () => this.whyRedisUnavailable(),
        ...(options.maxQueuedSends !== undefined && { maxQueued: options.maxQueuedSends }),
        maxQueuedBytes: options.maxQueuedSendBytes ?? this.config.sendQueueMaxBytes,
      }),
      (b) => b.close(),
    );
  }

  /** Where this producer's queues live; the api reports on it and checks it before enqueuing. */
  get queueBackend(): QueueBackend {
    return this.backend;
  }

  /**
   * Enables or disables an endpoint by hand (API, command line, dashboard, portal) and, when its
   * state changed, reports `endpoint.enabled` or `endpoint.disabled` (reason `manual`) to the
   * operator webhook. Undefined: no such endpoint.
   */
  async setEndpointActive(
    id: string,
    active: boolean,
  ): Promise<{ row: EndpointRow | undefined; changed: boolean }> {
    const result = await changeEndpointActive(this.dbClient.db, id, active);
    if (result.changed && result.row) {
      const { row } = result;
      await this.events.publish([
        {
          type: active ? 'endpoint.enabled' : 'endpoint.disabled',
          data: {
            endpointId: row.id,
            ownerId: row.ownerId,
            url: row.url,
            ...(!active && { reason: 'manual' }),
          },
        },
      ]);
    }
    return result;
  }

  /** The `deliveries` queue's shards (retries, postponements, redeliveries), for the dashboard. */
  get deliveries(): ShardedQueue {
    return this.queue;
  }

  /** The `messages` queue's shards (one fan-out job per message), for the dashboard. */
  get messages(): ShardedQueue {
    return this.messagesShards;
  }

  /** Shard 0 of the `deliveries` queue: the whole queue when HOOKFLEET_QUEUE_SHARDS is 1. */
  get deliveriesQueue(): Queue {
    return this.queue.shards[0]!;
  }

  /** Shard 0 of the `messages` queue: the whole queue when HOOKFLEET_QUEUE_SHARDS is 1. */
  get messagesQueue(): Queue {
    return this.messagesShards.shards[0]!;
  }

  /**
   * Fans a message out to the active endpoints of `ownerId` (without one: the active endpoints
   * without an owner) subscribed to `eventType` (narrowed to `endpointIds` when given; naming an
   * endpoint of another owner is a 422). With an `idempotencyKey` used before, enqueues nothing new and
   * returns the first message; the same key with another payload is a 409 `idempotency_conflict`.
   * While Redis is unreachable it fails within about a second with a 503 `redis_unavailable`.
   */
  async send(input: SendInput): Promise<SendResult> {
    const parsed = parseInput(sendInputSchema, input);
    const body = this.serialise(parsed.payload);
    const { db } = this.dbClient;
    // Checked before anything is stored, so an outage known up front leaves no unqueued message row.
    await this.assertRedisReady();

    if (parsed.idempotencyKey !== undefined) {
      const existing = await findMessageByIdempotencyKey(db, parsed.idempotencyKey);
      if (existing) return this.resume(existing, parsed);
    }
    if (parsed.endpointIds) {
      await assertSameOwner(this.dbClient.sql, parsed.ownerId, parsed.endpointIds);
    }
    const id = newId('msg');
    // Resolves once the message is stored AND its jobs are in Redis.
    const endpointIds = await this.batcher.submit({
      id,
      eventType: parsed.eventType,
      ownerId: parsed.ownerId,
      payloadJson: body,
      idempotencyKey: parsed.idempotencyKey,
      onlyIds: parsed.endpointIds,
    });
    if (!endpointIds) {
      // Another send with the same key won the race between our read and our insert (perhaps
      // in the same batch, which is then written and enqueued by now).
      const winner = await findMessageByIdempotencyKey(db, parsed.idempotencyKey!);
      return this.resume(winner!, parsed);
    }
    return { id, deliveries: endpointIds.length, endpointIds, duplicate: false };
  }

  /**
   * Sends a test event to one endpoint now (`POST /v1/endpoints/:id/test`, `hookfleet endpoints
   * test`). Without a payload it sends `{type, endpointId, sentAt}`.
   */
  sendTestEvent(
    endpointId: string,
    eventType = TEST_EVENT_TYPE,
    payload?: unknown,
  ): Promise<SendResult> {
    const body = payload ?? { type: eventType, endpointId, sentAt: new Date().toISOString() };
    return this.deliver(endpointId, body, eventType);
  }

  /** Sends `payload` to one endpoint, whatever event types it subscribes to. */
  async deliver(endpointId: string, payload: unknown, eventType = 'message'): Promise<SendResult> {
    const endpoint = await findEndpoint(this.dbClient.db, endpointId);
    if (!endpoint)
      throw new HookfleetError('not_found', `endpoint ${endpointId} does not exist`, 404);
    if (!endpoint.active) {
      throw new HookfleetError(
        'endpoint_inactive',
        `endpoint ${endpointId} is disabled; enable it first`,
        409,
      );
    }
    const parsed = parseInput(sendInputSchema, { eventType, payload });
    const body = this.serialise(parsed.payload);
    await this.assertRedisReady();
    const id = newId('msg');
    await insertMessage(this.dbClient.db, {
      id,
      eventType,
      // The endpoint's owner sees its test events and direct deliveries among its messages.
      ownerId: endpoint.ownerId,
      payload: parsed.payload,
      body,
      endpointIds: [endpointId],
    });
    await this.enqueue(id, [endpointId], endpoint.ownerId);
    return { id, deliveries: 1, endpointIds: [endpointId], duplicate: false };
  }

  /**
   * Finishes the sends in progress, then closes the connections this producer opened. Safe to
   * call twice; gives up waiting after HOOKFLEET_SHUTDOWN_TIMEOUT_MS (`config.shutdownTimeoutMs`).
   */
  async close(): Promise<void> {
    await this.life.close(this.config.shutdownTimeoutMs);
  }

  private serialise(payload: unknown): string {
    const body = JSON.stringify(payload);
    const bytes = Buffer.byteLength(body);
    if (bytes > this.config.maxPayloadBytes) {
      throw new HookfleetError(
        'payload_too_large',
        `payload is ${bytes} bytes; the limit is ${this.config.maxPayloadBytes} (HOOKFLEET_MAX_PAYLOAD_BYTES)`,
        413,
      );
    }
    return body;
  }

  /** A message with this idempotency key exists: check it is the same one, finish its enqueue if a crash cut it short. */
  private async resume(existing: MessageRow, input: SendInput): Promise<SendResult> {
    if (
      existing.eventType !== input.eventType ||
      existing.ownerId !== (input.ownerId ?? null) ||
      !isDeepStrictEqual(existing.payload, input.payload)
    ) {
      throw new HookfleetError(
        'idempotency_conflict',
        `idempotency key ${JSON.stringify(input.idempotencyKey)} was already used for a different message (${existing.id})`,
        409,
      );
    }
    if (existing.enqueuedAt === null) {
      await this.enqueue(existing.id, existing.endpointIds, existing.ownerId);
    }
    return {
      id: existing.id,
      deliveries: existing.endpointIds.length,
      endpointIds: existing.endpointIds,
      duplicate: true,
    };
  }

  /** Where fan-outs count in their owner's share of the queue (delivery/ownerQueue.ts). */
  private ownerShares(): OwnerShares | undefined {
    // Trial mode (queues on PostgreSQL) is one process: nothing to share, no priorities.
    if (this.backend.kind !== 'redis') return undefined;
    return {
      redis: this.backend.redis('producer'),
      prefix: this.config.queuePrefix,
      share: this.config.ownerQueueShare,
    };
  }

  /** Enqueues one stored message's fan-out (not batched: resumes and deliver() are rare), then marks it enqueued. */
  private async enqueue(
    messageId: string,
    endpointIds: string[],
    ownerId: string | null,
  ): Promise<void> {
    if (endpointIds.length > 0) {
      await this.assertRedisReady(messageId);
      try {
        await addMessageJobs(
          this.messagesShards,
          [messageId],
          undefined,
          await ownerPlaces(this.ownerShares(), [ownerId]),
        );
      } catch (error) {
        // Connection lost, command timed out, Redis out of memory or read-only: all mean "not
        // enqueued, try again later". Job ids are deterministic, so a retry cannot add twice.
        throw redisUnavailable(
          error instanceof Error ? error.message : String(error),
          messageId,
          error,
        );
      }
    }
    await markMessageEnqueued(this.dbClient.db, messageId);
  }

  /**
   * Throws `redis_unavailable` unless the Redis connection is ready or becomes ready within
   * PRODUCER_REDIS_WAIT_MS; a send must not hang on, or queue up behind, a Redis outage (issue #7).
   */
  private async assertRedisReady(messageId?: string): Promise<void> {
    const reason = await this.whyRedisUnavailable();
    if (reason !== undefined) throw redisUnavailable(reason, messageId);
  }

  /** Undefined once Redis is ready; otherwise why not, after one wait shared by every caller. */
  private async whyRedisUnavailable(): Promise<string | undefined> {
    return (
      (await this.backend.whyUnavailable(PRODUCER_REDIS_WAIT_MS)) ?? this.whyShardsUnrecorded()
    );
  }

  /**
   * Workers serve every shard ever recorded (queueShards.ts), so the shards this producer writes
   * to are recorded before its first job; once per producer, tried again after a failure.
   */
  private async whyShardsUnrecorded(): Promise<string | undefined> {
    // One shard writes to shard 0 only, which every worker serves; PostgreSQL has one shard.
    if (this.messagesShards.shards.length === 1) return undefined;
    this.shardsRecorded ??= recordQueueShards(this.backend, this.config).catch((error: unknown) => {
      this.shardsRecorded = undefined;
      return error instanceof Error ? error : new Error(String(error));
    });
    const outcome = await this.shardsRecorded;
    return outcome instanceof Error ? outcome.message : undefined;
  }
}
