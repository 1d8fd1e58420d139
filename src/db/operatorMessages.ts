/**
 * The operator's endpoint: operational events (endpoint.disabled, …) travel through the same
 * pipeline as customer messages (a message row, a fan-out job, signed attempts with the retry
 * schedule, attempt history), to one reserved endpoint row that HOOKFLEET_OPERATOR_WEBHOOK_URL
 * and HOOKFLEET_OPERATOR_WEBHOOK_SECRET describe.
 *
 * The row is kept out of every customer path by its owner: `OPERATOR_OWNER_ID` contains a '/',
 * which no owner id accepted from outside may (ids.ts), so no send, portal session or owner
 * filter can reach it, and an ownerless message never fans out to an owned endpoint. Lists,
 * counts and both sweeps leave it out by id.
 */
import type postgres from 'postgres';
import { pgArray } from './client.js';

/** The reserved endpoint row of the operator webhook. */
export const OPERATOR_ENDPOINT_ID = 'ep_operator';
/** Its owner, one no customer can have (ids.ts allows no '/'). */
export const OPERATOR_OWNER_ID = 'hookfleet/operator';

export interface OperatorTarget {
  url: string;
  /** The configured secret; undefined keeps the row's own (generated when the row was made). */
  secret: string | undefined;
  /** Secret given to the row when it is first made without a configured one. */
  generatedSecret: string;
}

export interface OperatorMessage {
  id: string;
  eventType: string;
  /** The event's `data` as JSON text; workers send it in the envelope (delivery/envelope.ts). */
  body: string;
}

/**
 * Stores operational messages for the operator's endpoint, first making or updating its row from
 * the configuration, in one statement: the row follows the configured URL and secret, and is
 * active whatever was done to it. `enqueued_at` is set on insert: nothing resumes these messages
 * by idempotency key, so the column only informs.
 */
export async function insertOperatorMessages(
  sql: postgres.Sql,
  target: OperatorTarget,
  messages: readonly OperatorMessage[],
): Promise<void> {
  if (messages.length === 0) return;
  const configured = target.secret ?? null;
  await sql`
    with endpoint as (
      insert into endpoints (id, url, owner_id, secret, description)
      values (${OPERATOR_ENDPOINT_ID}, ${target.url}, ${OPERATOR_OWNER_ID},
              ${configured ?? target.generatedSecret}, 'hookfleet operational events')
      on conflict (id) do update set
        url = excluded.url,
        secret = case when ${configured}::text is null then endpoints.secret else excluded.secret end,
        active = true, deactivated_at = null, deactivation_reason = null
      -- Only a change rewrites the row (and announces it to the workers' endpoint caches).
      where endpoints.url is distinct from excluded.url
        or (${configured}::text is not null and endpoints.secret is distinct from excluded.secret)
        or not endpoints.active
      returning id
    )
    insert into messages (id, event_type, owner_id, payload, body, envelope, endpoint_ids,
                          enqueued_at)
    select m.id, m.event_type, ${OPERATOR_OWNER_ID}, m.body::jsonb, m.body, true,
           array[${OPERATOR_ENDPOINT_ID}::text], now()
    from unnest(
      ${pgArray(messages.map((m) => m.id))}::text[],
      ${pgArray(messages.map((m) => m.eventType))}::text[],
      ${pgArray(messages.map((m) => m.body))}::text[]
    ) as m(id, event_type, body)`;
}
