/**
 * The rule that no event crosses customers: a send naming endpoints by id may name only
 * endpoints of the message's own owner (or, for a message without an owner, endpoints without
 * one). The fan-out query enforces the same rule silently; this check refuses the send instead,
 * so a platform that passes the wrong customer's endpoint ids hears about it.
 */
import type postgres from 'postgres';
import { findEndpointsOfOtherOwners } from '../db/endpoints.js';
import { HookfleetError } from '../errors.js';

/**
 * Throws a 422 `validation_failed` listing each of `endpointIds` that exists but belongs to
 * another owner than `ownerId` (undefined: no owner). Ids of no endpoint are left to the fan-out,
 * which skips them as it skips disabled or unsubscribed ones.
 */
export async function assertSameOwner(
  sql: postgres.Sql,
  ownerId: string | undefined,
  endpointIds: readonly string[],
): Promise<void> {
  const others = await findEndpointsOfOtherOwners(sql, endpointIds, ownerId ?? null);
  if (others.length === 0) return;
  const owners = new Map(others.map((row) => [row.id, row.ownerId]));
  const fields = endpointIds.flatMap((id, index) => {
    const owner = owners.get(id);
    if (owner === undefined) return [];
    const message =
      ownerId === undefined
        ? `${id} belongs to owner ${owner}; a message without ownerId reaches only endpoints without an owner`
        : owner === null
          ? `${id} has no owner; a message for owner ${ownerId} reaches only that owner's endpoints`
          : `${id} belongs to another owner than ${ownerId}`;
    return [{ path: `endpointIds.${index}`, message }];
  });
  throw new HookfleetError(
    'validation_failed',
    fields.map((f) => `${f.path}: ${f.message}`).join('; '),
    422,
    fields,
  );
}
