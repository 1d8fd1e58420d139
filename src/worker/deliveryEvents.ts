/**
 * With HOOKFLEET_DELIVERY_EVENTS on, a fan-out announces each delivery it ends (success, or
 * failure for good) on the `deliveries` queue's event stream, as event `delivery` with the
 * delivery's job id: the same stream where BullMQ announces the end of each delivery job, so one
 * QueueEvents listener sees every delivery end. Tests and tools that follow deliveries use it;
 * off by default, because it costs Redis one stream entry per delivery.
 */
import type { QueueBackend } from '../queueBackend.js';
import { DELIVERIES_QUEUE, deliveryJobId } from '../jobs.js';
import { shardCount, shardOf, shardPrefix, type ShardSettings } from '../queueShards.js';
import type { Logger } from '../logger.js';

/** As BullMQ's own event stream: its default length. */
const MAX_EVENTS = 10_000;
/**
 * Tries per event: a Redis restart takes a few seconds, and an event lost then leaves whoever
 * follows the delivery waiting for good. The fan-out waits for its events, so this bounds that
 * wait too (about 15 s).
 */
const PUBLISH_TRIES = 15;
const PUBLISH_RETRY_MS = 1000;

export interface DeliveryEvents {
  ended(messageId: string, endpointId: string, failedReason?: string): Promise<void>;
  close(): Promise<void>;
}

export function createDeliveryEvents(options: {
  enabled: boolean;
  /** Whose `deliveries` queue's event streams the events go on (Redis: the fan-out connection). */
  backend: QueueBackend;
  /** Each delivery's event goes to the stream of its message's shard of `deliveries`. */
  settings: ShardSettings;
  logger: Logger;
}): DeliveryEvents {
  if (!options.enabled) return { ended: () => Promise.resolve(), close: () => Promise.resolve() };
  const { backend, settings } = options;
  const producers = Array.from({ length: shardCount(backend, settings) }, (_, shard) =>
    backend.queueEventsProducer(DELIVERIES_QUEUE, shardPrefix(settings, DELIVERIES_QUEUE, shard)),
  );
  return {
    async ended(messageId, endpointId, failedReason) {
      const fields =
        failedReason === undefined ? { state: 'completed' } : { state: 'failed', failedReason };
      const event = {
        eventName: 'delivery',
        jobId: deliveryJobId(messageId, endpointId),
        ...fields,
      };
      for (let tries = 1; ; tries++) {
        try {
          await producers[shardOf(messageId, producers.length)]!.publishEvent(event, MAX_EVENTS);
          return;
        } catch (error) {
          if (tries >= PUBLISH_TRIES) {
            options.logger.warn({ err: error, messageId, endpointId }, 'delivery event lost');
            return;
          }
          await new Promise((resolve) => setTimeout(resolve, PUBLISH_RETRY_MS));
        }
      }
    },
    close: async () => {
      await Promise.all(producers.map((producer) => producer.close()));
    },
  };
}
