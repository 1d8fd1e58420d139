/**
 * What a delivery's failure changes beyond its own job: a 410 Gone disables the endpoint at once
 * (reason `gone`, as Standard Webhooks asks: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md#delivery-behavior),
 * and a delivery whose last retry failed is reported as `message.attempt.exhausted`. Neither
 * applies to the operator's own endpoint: a 410 from the operator receiver fails that delivery
 * only, and its exhausted deliveries are only logged, or events about it would feed themselves.
 */
import type { Database } from '../db/client.js';
import { disableActiveEndpoint } from '../db/endpoints.js';
import { OPERATOR_ENDPOINT_ID } from '../db/operatorMessages.js';
import type { EndpointRow } from '../db/schema.js';
import type { OperatorEvents } from '../delivery/operatorEvents.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';

export interface DeliveryFailureEvents {
  /** The receiver answered 410 Gone. Never throws. */
  gone(endpoint: EndpointRow, messageId: string, detail: string): Promise<void>;
  /** The delivery's last retry failed. Never throws. */
  exhausted(
    endpoint: EndpointRow,
    messageId: string,
    attempts: number,
    reason: string,
  ): Promise<void>;
}

export interface DeliveryFailureEventsDeps {
  db: Database;
  events: OperatorEvents;
  logger: Logger;
  metrics?: Metrics | undefined;
}

export function createDeliveryFailureEvents(
  deps: DeliveryFailureEventsDeps,
): DeliveryFailureEvents {
  return {
    async gone(endpoint, messageId, detail) {
      if (endpoint.id === OPERATOR_ENDPOINT_ID) return;
      try {
        const row = await disableActiveEndpoint(deps.db, endpoint.id, 'gone');
        if (!row) return; // already disabled, by this 410's twin or by someone else
        deps.metrics?.endpointsDeactivated.inc({ reason: 'gone' });
        await deps.events.publish([
          {
            type: 'endpoint.disabled',
            data: {
              endpointId: row.id,
              ownerId: row.ownerId,
              url: row.url,
              reason: 'gone',
              messageId,
              detail,
            },
          },
        ]);
      } catch (error) {
        // The delivery has failed for good already; the next 410 tries again.
        deps.logger.error(
          { err: error, endpointId: endpoint.id },
          'could not disable a gone endpoint',
        );
      }
    },
    async exhausted(endpoint, messageId, attempts, reason) {
      if (endpoint.id === OPERATOR_ENDPOINT_ID) return;
      await deps.events.publish([
        {
          type: 'message.attempt.exhausted',
          data: {
            endpointId: endpoint.id,
            ownerId: endpoint.ownerId,
            url: endpoint.url,
            messageId,
            attempts,
            reason,
          },
        },
      ]);
    },
  };
}
