/**
 * Operational events: every change of an endpoint's state, for the people running hookfleet.
 * They are messages like any other, delivered to the operator's reserved endpoint
 * (db/operatorMessages.ts) through the `messages` queue: signed, retried on the delivery retry
 * schedule, their attempts recorded. One message per endpoint and event, each naming the
 * endpoint and its owner, in the Standard Webhooks envelope.
 *
 *   endpoint.stale_warning     the stale sweep will disable it within HOOKFLEET_STALE_WARNING_DAYS
 *   endpoint.failing_warning   failing with no success for half its failing threshold
 *   endpoint.disabled          with `reason`: stale, failing, gone (410) or manual
 *   endpoint.enabled           enabled again (API, CLI, health page, portal)
 *   endpoint.recovered         first success after an endpoint.failing_warning
 *   message.attempt.exhausted  a delivery's last retry failed
 *
 * Events about the operator's own endpoint are never published: a failing operator receiver
 * would otherwise feed itself.
 */
import type { Queue } from 'bullmq';
import type postgres from 'postgres';
import type { Config } from '../config.js';
import { insertOperatorMessages, OPERATOR_ENDPOINT_ID } from '../db/operatorMessages.js';
import { newId, newSecret } from '../ids.js';
import { addMessageJobs } from '../jobs.js';
import type { Logger } from '../logger.js';
import { oneShard, type ShardedQueue } from '../queueShards.js';

export type OperatorEventType =
  | 'endpoint.stale_warning'
  | 'endpoint.failing_warning'
  | 'endpoint.disabled'
  | 'endpoint.enabled'
  | 'endpoint.recovered'
  | 'message.attempt.exhausted';

/** Why an endpoint was disabled. */
export type DisableReason = 'stale' | 'failing' | 'gone' | 'manual';

export interface OperatorEvent {
  type: OperatorEventType;
  /** The event's `data`: always the endpoint and its owner, then what the event adds. */
  data: { endpointId: string; ownerId: string | null } & Record<string, unknown>;
}

export interface OperatorEvents {
  /**
   * Logs the events and, with HOOKFLEET_OPERATOR_WEBHOOK_URL set, stores them as messages and
   * enqueues their fan-outs. Never throws: an event that cannot be stored must not fail the sweep
   * or delivery that caused it. Resolves false when they could not be stored or enqueued.
   */
  publish(events: readonly OperatorEvent[]): Promise<boolean>;
}

export interface OperatorEventsDeps {
  sql: postgres.Sql;
  /** The `messages` queue: its shards (each event goes to its message's), or one Queue. */
  queue: ShardedQueue | Queue;
  config: Pick<Config, 'operatorWebhookUrl' | 'operatorWebhookSecret'>;
  /** Default: nothing is logged (a library caller's own process). */
  logger?: Logger | undefined;
}

export function createOperatorEvents(deps: OperatorEventsDeps): OperatorEvents {
  const { config } = deps;
  const queue = 'shards' in deps.queue ? deps.queue : oneShard(deps.queue);
  const logger = deps.logger;
  if (config.operatorWebhookUrl !== undefined && config.operatorWebhookSecret === undefined) {
    logger?.warn(
      'HOOKFLEET_OPERATOR_WEBHOOK_SECRET is not set: operator events are signed with a generated secret (hookfleet endpoints show ep_operator --json shows it)',
    );
  }
  return {
    async publish(all) {
      const events = all.filter((event) => event.data.endpointId !== OPERATOR_ENDPOINT_ID);
      if (logger) logOperatorEvents(logger, events);
      const url = config.operatorWebhookUrl;
      if (url === undefined || events.length === 0) return true;
      // The workers wrap `data` in the Standard Webhooks envelope, as for every message.
      const messages = events.map((event) => ({
        id: newId('msg'),
        eventType: event.type,
        body: JSON.stringify(event.data),
      }));
      try {
        await insertOperatorMessages(
          deps.sql,
          { url, secret: config.operatorWebhookSecret, generatedSecret: newSecret() },
          messages,
        );
        await addMessageJobs(
          queue,
          messages.map(({ id }) => id),
        );
        return true;
      } catch (error) {
        logger?.error(
          { err: error, events: events.map((e) => e.type), count: events.length },
          'operational events could not be stored or enqueued',
        );
        return false;
      }
    },
  };
}

/**
 * One log line per event type of a batch, naming its endpoints: a sweep that disables thousands
 * of endpoints logs a line per batch, not one per endpoint.
 */
export function logOperatorEvents(logger: Logger, events: readonly OperatorEvent[]): void {
  const byType = new Map<OperatorEventType, OperatorEvent[]>();
  for (const event of events) {
    const ofType = byType.get(event.type);
    if (ofType) ofType.push(event);
    else byType.set(event.type, [event]);
  }
  for (const [type, ofType] of byType) {
    const endpointIds = ofType.map((event) => event.data.endpointId);
    if (ofType.length === 1) logger.info({ event: type, ...ofType[0]!.data }, type);
    else logger.info({ event: type, count: ofType.length, endpointIds }, type);
  }
}
