import { createHmac } from 'node:crypto';

const SECRET_PREFIX = 'whsec_';
/** Decoded keys remembered; past it the memory starts again (one entry per endpoint secret). */
const MAX_KNOWN_KEYS = 10_000;
const keys = new Map<string, Buffer>();

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
  // The body is fed on its own rather than copied into one "id.timestamp.body" string first:
  // the same bytes are signed, without a body-sized string per attempt.
  const head = `${messageId}.${timestampSec}.`;
  let header = '';
  for (const secret of secrets) {
    const mac = createHmac('sha256', secretKey(secret)).update(head).update(body).digest('base64');
    header += header === '' ? `v1,${mac}` : ` v1,${mac}`;
  }
  return header;
}

/** The HMAC key is the base64-decoded part after `whsec_`; decoded once per secret. */
function secretKey(secret: string): Buffer {
  let key = keys.get(secret);
  if (key === undefined) {
    key = Buffer.from(
      secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret,
      'base64',
    );
    if (keys.size >= MAX_KNOWN_KEYS) keys.clear();
    keys.set(secret, key);
  }
  return key;
}
