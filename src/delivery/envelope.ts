/**
 * The Standard Webhooks envelope, `{"type","timestamp","data"}`
 * (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md#payload-structure),
 * which tells a receiver subscribed to several event types which one it got.
 *
 * Built by concatenation around the payload's stored bytes, never by re-serialising: with the type
 * and timestamp fixed when the message was accepted, every attempt, retry, redeliver and replay of
 * a message to an endpoint sends (and signs) the same bytes, and PostgreSQL stores the payload once.
 */

/** What an endpoint receives as the request body. */
export const PAYLOAD_FORMATS = ['envelope', 'raw'] as const;
export type PayloadFormat = (typeof PAYLOAD_FORMATS)[number];

/**
 * The envelope around `dataJson` (JSON text, used as is). `timestamp` is an RFC 3339 time, fixed
 * for the message (see envelopeTimestamp).
 */
export function envelopeBody(type: string, timestamp: string, dataJson: string): string {
  return `{"type":${JSON.stringify(type)},"timestamp":${JSON.stringify(timestamp)},"data":${dataJson}}`;
}

/** The envelope's timestamp for a moment: RFC 3339 in UTC with milliseconds, as toISOString. */
export function envelopeTimestamp(at: Date): string {
  return at.toISOString();
}

/** A message's payload as the workers send it, to endpoints of either format. */
export interface MessageContent {
  /** The payload's exact stored bytes (JSON text). */
  readonly payload: string;
  /** The request body for an endpoint of this format. */
  body(format: PayloadFormat): string;
}

/**
 * `envelope` absent (a message accepted before envelopes existed): every endpoint gets the bare
 * payload, as its first attempts did. The envelope is built once per content object, so a fan-out
 * to many endpoints shares one string.
 */
export function messageContent(
  payload: string,
  envelope?: { type: string; timestamp: string },
): MessageContent {
  let wrapped: string | undefined;
  return {
    payload,
    body(format) {
      if (format === 'raw' || envelope === undefined) return payload;
      wrapped ??= envelopeBody(envelope.type, envelope.timestamp, payload);
      return wrapped;
    },
  };
}
