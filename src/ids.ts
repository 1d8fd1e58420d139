import { randomBytes } from 'node:crypto';
import { z } from 'zod';

/**
 * Prefixed, time-ordered ids (`msg_…`, `ep_…`, `ps_…`), like Svix's: the prefix says what an id names
 * when it turns up in a log, and the time-ordered head keeps b-tree inserts at the right edge.
 * BullMQ forbids ':' in custom job ids, so ids use only [0-9a-z_].
 */
export function newId(prefix: 'msg' | 'ep' | 'ps'): string {
  const time = Date.now().toString(36).padStart(9, '0');
  const random = BigInt(`0x${randomBytes(10).toString('hex')}`)
    .toString(36)
    .padStart(16, '0');
  return `${prefix}_${time}${random}`;
}

/** A Standard Webhooks signing secret: `whsec_` and base64 of 32 random bytes. */
export function newSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/** An endpoint id as newId('ep') makes it; anything else names no endpoint. */
export const endpointIdSchema = z
  .string()
  .regex(/^ep_[0-9a-z]{1,64}$/, 'expected an endpoint id (ep_…)');
/** A message id as newId('msg') makes it. */
export const messageIdSchema = z
  .string()
  .regex(/^msg_[0-9a-z]{1,64}$/, 'expected a message id (msg_…)');

/**
 * Owners: the platform's customers. hookfleet keeps no table of them; an owner id is whatever id
 * the platform already uses for the customer (an account id, a slug), written on each endpoint
 * and message. One rule for every way in (library, HTTP API, command line, dashboard filter).
 */

/** Most characters in an owner id. */
export const OWNER_ID_MAX_LENGTH = 128;

/**
 * Letters, digits and `_ - . : @`: enough for UUIDs, numeric ids, slugs and `org:42`-style ids,
 * and nothing that needs escaping in a URL path, a log line or an HTML attribute.
 */
export const OWNER_ID_PATTERN = /^[A-Za-z0-9_.:@-]{1,128}$/;

export const ownerIdSchema = z
  .string()
  .min(1, 'expected an owner id of 1 to 128 characters')
  .max(OWNER_ID_MAX_LENGTH, `expected at most ${OWNER_ID_MAX_LENGTH} characters`)
  .regex(OWNER_ID_PATTERN, 'use only letters, digits and _ - . : @ (1 to 128 characters)');

export function isOwnerId(value: string): boolean {
  return OWNER_ID_PATTERN.test(value);
}
