/**
 * Message bodies for delivery jobs (retries, postponements, redeliveries), read from PostgreSQL
 * and kept in a cache bounded by bytes, least recently used first out: the deliveries of one
 * message that retry together (a receiver's outage) read its row once. Concurrent reads of one
 * message share one query.
 */
import type postgres from 'postgres';
import { findMessageToSend } from '../db/messageBodies.js';
import { messageContent, type MessageContent } from '../delivery/envelope.js';

export interface MessageBodies {
  /** The payload (and its envelope), or undefined when the message no longer exists. */
  get(messageId: string): Promise<MessageContent | undefined>;
}

/** Default bound: 256 bodies of 256 KiB, or far more small ones. */
export const DEFAULT_BODY_CACHE_BYTES = 64 * 1024 * 1024;

export function createMessageBodies(
  sql: postgres.Sql,
  maxBytes = DEFAULT_BODY_CACHE_BYTES,
): MessageBodies {
  // A Map iterates in insertion order; re-inserting on each hit makes the first key the least recent.
  const cached = new Map<string, MessageContent>();
  const loading = new Map<string, Promise<MessageContent | undefined>>();
  let bytes = 0;
  // Code units, not bytes, and the payload only (its envelope, once built, about doubles it):
  // a bound within a factor of four is what matters here, cheaply.
  const sizeOf = (content: MessageContent) => content.payload.length * 2;

  function keep(messageId: string, content: MessageContent): void {
    const size = sizeOf(content);
    if (size > maxBytes) return;
    cached.set(messageId, content);
    bytes += size;
    for (const [id, old] of cached) {
      if (bytes <= maxBytes) break;
      cached.delete(id);
      bytes -= sizeOf(old);
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
            if (!message) return undefined;
            const content = messageContent(message.body, message.envelope);
            keep(messageId, content);
            return content;
          })
          .finally(() => loading.delete(messageId));
        loading.set(messageId, load);
      }
      return load;
    },
  };
}
