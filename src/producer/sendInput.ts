import { z } from 'zod';
import { HookfleetError } from '../errors.js';
import { ownerIdSchema } from '../ids.js';

const eventType = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[A-Za-z0-9_.:-]+$/, 'use letters, digits and _ . : - (e.g. invoice.paid)');

export const sendInputSchema = z.strictObject({
  eventType,
  /** Any JSON value; sent as the request body. */
  payload: z.json(),
  /**
   * The customer the event is about: it reaches only that owner's endpoints. Without one it
   * reaches only endpoints without an owner (platform-wide subscribers).
   */
  ownerId: ownerIdSchema.optional(),
  /** Sends with a key already used enqueue nothing new. */
  idempotencyKey: z.string().min(1).max(256).optional(),
  /** Narrow the fan-out to these endpoints (still only active, subscribed ones). */
  endpointIds: z.array(z.string().min(1)).min(1).max(1000).optional(),
});

export type SendInput = z.input<typeof sendInputSchema>;

/** Parses with a zod schema, turning failures into a 422 that lists each field. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const fields = result.error.issues.map((issue) => ({
    path: issue.path.join('.') || '(root)',
    message: issue.message,
  }));
  throw new HookfleetError(
    'validation_failed',
    fields.map((f) => `${f.path}: ${f.message}`).join('; '),
    422,
    fields,
  );
}
