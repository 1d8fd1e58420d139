import type { Config } from '../config.js';
import { DeliveryError, RetryableDeliveryError } from '../errors.js';
import { newId } from '../ids.js';
import type { Logger } from '../logger.js';
import { createAddressGuard, type Resolver } from '../delivery/addressGuard.js';
import { createDeliveryClient, type DeliveryClient } from '../delivery/httpClient.js';
import { signatureHeader } from '../delivery/signature.js';

/** Operational events about endpoints, for the people running hookfleet. */
export type OperatorEventType = 'endpoint.stale_warning' | 'endpoint.deactivated';

/** The body POSTed to HOOKFLEET_OPERATOR_WEBHOOK_URL: many endpoints per event, one POST per sweep batch. */
export interface OperatorEvent {
  type: OperatorEventType;
  /** ISO 8601, when the event was sent. */
  timestamp: string;
  data: { endpoints: readonly Record<string, unknown>[] } & Record<string, unknown>;
}

export interface OperatorEvents {
  /**
   * Logs the event, then POSTs it to the operator URL when one is configured. Never throws: a
   * failing operator URL must not fail the sweep. Resolves false when the POST failed (or was
   * skipped after an earlier failure), true otherwise.
   */
  publish(type: OperatorEventType, data: OperatorEvent['data']): Promise<boolean>;
  close(): Promise<void>;
}

export interface OperatorEventsDeps {
  config: Pick<
    Config,
    | 'operatorWebhookUrl'
    | 'operatorWebhookSecret'
    | 'allowCidrs'
    | 'operatorAllowCidrs'
    | 'deliveryTimeoutMs'
  >;
  logger: Logger;
  /** DNS resolver for the address guard; tests inject one. */
  resolve?: Resolver | undefined;
}

const USER_AGENT = 'hookfleet/0.1 (+https://www.standardwebhooks.com)';
/** Pause before the one retry of a POST that failed for a reason that may pass. */
const RETRY_DELAY_MS = 1000;

/**
 * Sends operational events like any webhook: Standard Webhooks headers, signed with
 * HOOKFLEET_OPERATOR_WEBHOOK_SECRET when set, through the same undici client and SSRF address
 * guard as deliveries. The guard allows HOOKFLEET_OPERATOR_ALLOW_CIDRS on top of
 * HOOKFLEET_ALLOW_CIDRS: the operator chose this URL, so it may reach at least what customer
 * endpoints may, and an internal operator receiver does not open its range to customers.
 *
 * Each POST is tried twice at most. Once one has failed, the rest of this instance's events are
 * only logged, so a dead operator URL costs one timeout per sweep rather than one per batch; the
 * sweep makes a new instance per run. Every event is logged whether or not it is POSTed.
 */
export function createOperatorEvents(deps: OperatorEventsDeps): OperatorEvents {
  const { config, logger } = deps;
  const url = config.operatorWebhookUrl;
  let client: DeliveryClient | undefined;
  let suspended = false;
  if (url !== undefined) {
    const guard = createAddressGuard({
      allowCidrs: [...config.allowCidrs, ...config.operatorAllowCidrs],
      allowCidrsSetting: 'HOOKFLEET_ALLOW_CIDRS or HOOKFLEET_OPERATOR_ALLOW_CIDRS',
      ...(deps.resolve && { resolve: deps.resolve }),
    });
    client = createDeliveryClient({
      timeoutMs: config.deliveryTimeoutMs,
      guard,
      connectionsPerOrigin: 1,
    });
    if (config.operatorWebhookSecret === undefined) {
      logger.warn(
        'HOOKFLEET_OPERATOR_WEBHOOK_SECRET is not set: operator events are sent unsigned',
      );
    }
  }

  async function post(event: OperatorEvent): Promise<void> {
    const body = JSON.stringify(event);
    const id = newId('msg');
    for (let attempt = 1; ; attempt++) {
      const timestampSec = Math.floor(Date.now() / 1000);
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'user-agent': USER_AGENT,
        'webhook-id': id,
        'webhook-timestamp': String(timestampSec),
      };
      if (config.operatorWebhookSecret !== undefined) {
        headers['webhook-signature'] = signatureHeader(
          [config.operatorWebhookSecret],
          id,
          timestampSec,
          body,
        );
      }
      try {
        await client!.post({ url: url!, headers, body });
        return;
      } catch (error) {
        if (attempt >= 2 || !(error instanceof RetryableDeliveryError)) throw error;
        await delay(RETRY_DELAY_MS);
      }
    }
  }

  return {
    async publish(type, data) {
      const endpointIds = data.endpoints.map((endpoint) => endpoint.id);
      logger.info({ event: type, count: endpointIds.length, endpointIds }, type);
      if (client === undefined) return true;
      if (suspended) {
        logger.warn(
          { event: type },
          'operator webhook skipped after an earlier failure in this sweep',
        );
        return false;
      }
      try {
        await post({ type, timestamp: new Date().toISOString(), data });
        return true;
      } catch (error) {
        suspended = true;
        const reason = error instanceof DeliveryError ? error.message : String(error);
        logger.error({ event: type, reason }, 'operator webhook failed');
        return false;
      }
    },
    async close() {
      await client?.close();
    },
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
