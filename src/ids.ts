import { randomBytes } from 'node:crypto';
import { z } from 'zod';

/**
 * Prefixed, time-ordered ids (`msg_…`, `ep_…`), like Svix's: the prefix says what an id names
 * when it turns up in a log, and the time-ordered head keeps b-tree inserts at the right edge.
 * BullMQ forbids ':' in custom job ids, so ids use only [0-9a-z_].
 */
export function newId(prefix: 'msg' | 'ep'): string {
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
