/**
 * The benchmark's receiver, run as a process of its own (as a real receiver would be): answers
 * every POST with 204 and reports, over IPC, how many deliveries arrived and, for payloads that
 * carry `sentAtMs`, the end-to-end latency. An argument (milliseconds) makes it a slow receiver
 * that answers each POST that much later.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const answerAfterMs = Number(process.argv[2] ?? 0);
let received = 0;
let latenciesMs: number[] = [];
/** A payload whose first key is `sentAtMs` (warm-up payloads start with another). */
const SENT_AT = /\{"sentAtMs":(\d+)/;

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    received += 1;
    const body = Buffer.concat(chunks);
    // Only latency-phase payloads start with this key, bare or as the envelope's `data`, within
    // the first bytes; parsing every body would slow the receiver.
    const sentAt = SENT_AT.exec(body.subarray(0, 160).toString('latin1'));
    if (sentAt) latenciesMs.push(Date.now() - Number(sentAt[1]));
    if (answerAfterMs > 0) setTimeout(() => res.writeHead(204).end(), answerAfterMs);
    else res.writeHead(204).end();
  });
});
server.keepAliveTimeout = 30_000;

process.on('message', (message: { type: string }) => {
  if (message.type === 'stats') process.send!({ type: 'stats', received });
  if (message.type === 'latencies') {
    process.send!({ type: 'latencies', latenciesMs });
    latenciesMs = [];
  }
  if (message.type === 'reset') {
    received = 0;
    latenciesMs = [];
    process.send!({ type: 'reset' });
  }
  if (message.type === 'stop') server.close(() => process.exit(0));
});

server.listen(0, '127.0.0.1', () => {
  process.send!({ type: 'ready', port: (server.address() as AddressInfo).port });
});
