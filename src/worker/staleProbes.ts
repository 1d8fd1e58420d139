/**
 * The stale sweep's probe (issue #20 item 4): an endpoint due to be deactivated as stale that got
 * no deliveries during its stale window is sent a signed `hookfleet.ping` first, because idle is
 * not dead. It goes through the normal pipeline (a message row for that endpoint alone, owned by
 * the endpoint's owner, and a fan-out job), so it is signed, retried and recorded like any
 * delivery: a 2xx sets last_success_at and so restarts the stale clock; a failure sets
 * last_failure_at, which makes the endpoint non-idle and lets the next sweep deactivate it.
 */
import type { ShardedQueue } from '../queueShards.js';
import type postgres from 'postgres';
import { insertPingMessages } from '../db/messages.js';
import type { StaleEndpoint } from '../db/staleEndpoints.js';
import { newId } from '../ids.js';
import { addMessageJobs } from '../jobs.js';
import type { Logger } from '../logger.js';

export const PING_EVENT_TYPE = 'hookfleet.ping';

export interface StaleProbes {
  /**
   * Stores and enqueues one ping per endpoint. Never throws: a probe that cannot be sent leaves
   * the endpoint probed but unanswered, so a sweep after the grace period deactivates it as
   * before. Resolves false when the pings could not be stored or enqueued.
   */
  send(endpoints: readonly StaleEndpoint[]): Promise<boolean>;
}

export interface StaleProbesDeps {
  sql: postgres.Sql;
  /** The `messages` queue: its shards (each ping goes to its message's). */
  queue: ShardedQueue;
  logger?: Logger | undefined;
}

export function createStaleProbes(deps: StaleProbesDeps): StaleProbes {
  return {
    async send(endpoints) {
      if (endpoints.length === 0) return true;
      const pings = endpoints.map((endpoint) => ({
        id: newId('msg'),
        endpointId: endpoint.id,
        payloadJson: JSON.stringify({
          endpointId: endpoint.id,
          reason: 'stale',
          lastSuccessAt: endpoint.lastSuccessAt?.toISOString() ?? null,
          staleAfterDays: endpoint.staleAfterDays,
        }),
      }));
      try {
        const ids = await insertPingMessages(deps.sql, PING_EVENT_TYPE, pings);
        await addMessageJobs(deps.queue, ids);
        deps.logger?.info(
          { count: ids.length, endpointIds: endpoints.map((e) => e.id) },
          'stale sweep probed idle endpoints',
        );
        return true;
      } catch (error) {
        deps.logger?.error(
          { err: error, count: endpoints.length },
          'stale probes could not be stored or enqueued',
        );
        return false;
      }
    },
  };
}
