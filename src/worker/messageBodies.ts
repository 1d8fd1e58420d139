/**
 * Message bodies for delivery jobs (retries, postponements, redeliveries), read from PostgreSQL
 * and kept in a cache bounded by bytes, least recently used first out: the deliveries of one
 * message that retry together (a receiver's outage) read its row once. Concurrent reads of one
 * message share one query.
 */
import type postgres from 'postgres';
import { findMessageToSend } from '../db/messageBodies.js';

export interface MessageBodies {
  /** The body, or undefined when the message no longer exists. */
  get(messageId: string): Promise<string | undefined>;
}

/** Default bound: 256 bodies of 256 KiB, or far more small ones. */
export const DEFAULT_BODY_CACHE_BYTES = 64 * 1024 * 1024;

export function createMessageBodies(
  sql: postgres.Sql,
  maxBytes = DEFAULT_BODY_CACHE_BYTES,
): MessageBodies {
  // A Map iterates in insertion order; re-inserting on each hit makes the first key the least recent.
  const cached = new Map<string, string>();
  const loading = new Map<string, Promise<string | undefined>>();
  let bytes = 0;

  function keep(messageId: string, body: string): void {
    // Code units, not bytes: a bound within a factor of two is what matters here, cheaply.
    const size = body.length * 2;
    if (size > maxBytes) return;
    cached.set(messageId, body);
    bytes += size;
    for (const [id, old] of cached) {
      if (bytes <= maxBytes) break;
      cached.delete(id);
      bytes -= old.length * 2;
    }
  }

  return {
    get(messageId) {
      const hit = cached.get(messageId);
      if (hit !== undefined) {
        cached.delete(messageId);
        cached.set(messageId, hit);
        return Promise.resolve(hit);
      }
      let load = loading.get(messageId);
      if (!load) {
        load = findMessageToSend(sql, messageId)
          .then((message) => {
            if (message) keep(messageId, message.body);
            return message?.body;
          })
          .finally(() => loading.delete(messageId));
        loading.set(messageId, load);
      }
      return load;
    },
  };
}
