import { endpointAttemptStats } from '../db/attempts.js';
import type { Database } from '../db/client.js';
import type { EndpointRow } from '../db/schema.js';
import type { endpointHealthSchema } from './contracts.js';
import { toEndpointView } from './views.js';
import type { z } from 'zod';

export type EndpointHealthView = z.input<typeof endpointHealthSchema>;

const DAY_MS = 24 * 3600 * 1000;

/**
 * An endpoint with its health, as `GET /v1/endpoints/:id` and `hookfleet endpoints show` give it:
 * the endpoint view plus attempt statistics over the 24 hours before `now`.
 */
export async function endpointHealthView(
  db: Database,
  row: EndpointRow,
  now = new Date(),
): Promise<EndpointHealthView> {
  const since = new Date(now.getTime() - DAY_MS);
  const stats = await endpointAttemptStats(db, row.id, since);
  return { ...toEndpointView(row), stats24h: { since: since.toISOString(), ...stats } };
}
