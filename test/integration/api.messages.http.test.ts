/**
 * POST /v1/messages over a real HTTP server (@hono/node-server), where the body is read from the
 * Node request directly rather than through a web stream (jsonBody.ts), and concurrent
 * requests share the producer's batches.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertEndpoint } from '../../src/db/endpoints.js';
import { findMessage } from '../../src/db/messages.js';
import { messageJobId } from '../../src/jobs.js';
import { sendMessageResponse } from '../../src/api/contracts.js';
import { ENVELOPE_ALLOWANCE_BYTES } from '../../src/api/messageRoutes.js';
import { startApiServer, type RunningApiServer } from '../../src/api/server.js';
import { API_KEY, createApiHarness, type ApiHarness } from '../helpers/apiHarness.js';

// No worker runs in this file: jobs stay in the queue where the test can look at them.
const MAX_PAYLOAD_BYTES = 1024;
let api: ApiHarness;
let server: RunningApiServer;
let base: string;
beforeAll(async () => {
  api = await createApiHarness({ HOOKFLEET_MAX_PAYLOAD_BYTES: String(MAX_PAYLOAD_BYTES) });
  server = await startApiServer(api.deps, { port: 0, hostname: '127.0.0.1' });
  base = `http://127.0.0.1:${server.port}`;
});
afterAll(async () => {
  await server.close();
  await api.close();
});

const headers = { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' };
const post = (body: string) => fetch(`${base}/v1/messages`, { method: 'POST', headers, body });

describe('POST /v1/messages over HTTP', () => {
  it('answers 202 to many concurrent sends, each stored and enqueued before its answer', async () => {
    const endpoints = await Promise.all(
      [0, 1, 2].map(async () => {
        const row = await insertEndpoint(api.fleet.db.db, {
          url: 'http://127.0.0.1:9/hook',
          eventTypes: ['http.batch'],
        });
        return row.id;
      }),
    );
    const responses = await Promise.all(
      Array.from({ length: 30 }, (_, n) =>
        post(
          JSON.stringify({
            eventType: 'http.batch',
            payload: { n },
            endpointIds: [endpoints[n % 3]],
          }),
        ),
      ),
    );
    const sent = await Promise.all(
      responses.map(async (res) => {
        expect(res.status).toBe(202);
        return sendMessageResponse.parse(await res.json());
      }),
    );
    expect(new Set(sent.map((s) => s.id)).size).toBe(30);
    for (const [n, message] of sent.entries()) {
      expect(message.endpointIds).toEqual([endpoints[n % 3]]);
      expect(await api.fleet.producer.messagesQueue.getJob(messageJobId(message.id))).toBeDefined();
      expect((await findMessage(api.fleet.db.db, message.id))?.body).toBe(JSON.stringify({ n }));
      expect((await findMessage(api.fleet.db.db, message.id))?.enqueuedAt).not.toBeNull();
    }
  });

  it('enqueues once for concurrent sends with one idempotency key', async () => {
    const endpoint = await insertEndpoint(api.fleet.db.db, {
      url: 'http://127.0.0.1:9/hook',
      eventTypes: ['http.idem'],
    });
    const body = JSON.stringify({
      eventType: 'http.idem',
      payload: { paid: true },
      idempotencyKey: 'http-idem-1',
    });
    const sent = await Promise.all(
      Array.from({ length: 10 }, async () => {
        const res = await post(body);
        expect(res.status).toBe(202);
        return sendMessageResponse.parse(await res.json());
      }),
    );
    expect(new Set(sent.map((s) => s.id)).size).toBe(1);
    expect(sent.filter((s) => !s.duplicate)).toHaveLength(1);
    const queue = api.fleet.producer.messagesQueue;
    expect(await queue.getJob(messageJobId(sent[0]!.id))).toBeDefined();
    const jobs = await queue.getJobs(['wait'], 0, -1);
    expect(jobs.filter((job) => job.data.messageId === sent[0]!.id)).toHaveLength(1);
    expect(sent[0]!.endpointIds).toEqual([endpoint.id]);
  });

  it('answers 400 to malformed JSON and 422 to a bad field, read from the socket', async () => {
    const malformed = await post('{"eventType": ');
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toMatchObject({ code: 'malformed_json' });
    const invalid = await post(JSON.stringify({ eventType: 'has space', payload: 1 }));
    expect(invalid.status).toBe(422);
    expect(await invalid.json()).toMatchObject({ code: 'validation_failed' });
  });

  it('stops reading a chunked body past the limit and answers 413, then serves the next request', async () => {
    const limit = MAX_PAYLOAD_BYTES + ENVELOPE_ALLOWANCE_BYTES;
    const chunk = Buffer.alloc(16 * 1024, ' ');
    const maxChunks = 1000; // 16 MiB: far past the limit
    let written = 0;
    const response = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      // No Content-Length: only the bytes read can tell the body is too large.
      const req = httpRequest(`${base}/v1/messages`, { method: 'POST', headers });
      let answered = false;
      req.on('response', (res: IncomingMessage) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString() });
          req.destroy();
        });
      });
      req.on('error', (error) => (answered ? undefined : reject(error)));
      const writeMore = () => {
        while (!answered && written < maxChunks) {
          written++;
          if (!req.write(chunk)) return void req.once('drain', writeMore);
        }
        if (!answered) req.end();
      };
      writeMore();
    });
    expect(response.status).toBe(413);
    expect(JSON.parse(response.body)).toMatchObject({ code: 'payload_too_large' });
    expect(response.body).toContain(String(limit));
    expect(written).toBeLessThan(maxChunks);

    const next = await post(JSON.stringify({ eventType: 'http.after', payload: 1 }));
    expect(next.status).toBe(202);
  });
});
