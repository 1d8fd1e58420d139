/**
 * The Standard Webhooks body envelope, `{"type", "timestamp", "data"}`
 * (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md#payload-structure):
 * the receiver learns the event type from the body itself. One function, so every body hookfleet
 * builds (operational events, customer messages) has the same shape.
 */
export function webhookEnvelope(type: string, data: unknown, at: Date = new Date()): string {
  return JSON.stringify({ type, timestamp: at.toISOString(), data });
}
