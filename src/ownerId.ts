/**
 * Owners: the platform's customers. hookfleet keeps no table of them; an owner id is whatever id
 * the platform already uses for the customer (an account id, a slug), written on each endpoint
 * and message. One rule for every way in (library, HTTP API, command line, dashboard filter).
 */
import { z } from 'zod';

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
