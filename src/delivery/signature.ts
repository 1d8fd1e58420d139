import { createHmac } from 'node:crypto';

const SECRET_PREFIX = 'whsec_';

/**
 * The `webhook-signature` header of Standard Webhooks
 * (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md):
 * `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one space-separated entry per secret, so a
 * receiver that knows either the old or the new secret verifies during a rotation.
 */
export function signatureHeader(
  secrets: readonly string[],
  messageId: string,
  timestampSec: number,
  body: string,
): string {
  const signed = `${messageId}.${timestampSec}.${body}`;
  return secrets
    .map(
      (secret) => `v1,${createHmac('sha256', secretKey(secret)).update(signed).digest('base64')}`,
    )
    .join(' ');
}

/** The HMAC key is the base64-decoded part after `whsec_`. */
function secretKey(secret: string): Buffer {
  return Buffer.from(
    secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret,
    'base64',
  );
}
