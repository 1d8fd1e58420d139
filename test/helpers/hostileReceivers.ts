import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';

/**
 * Receivers that answer with bytes a well-behaved HTTP server never sends, on raw TCP so that
 * nothing (Node's own HTTP server included) tidies them up first. Each reads the whole request
 * (headers and the body its content-length announces), so the client's write never races the
 * answer, then answers and closes.
 */
export interface RawReceiver {
  url: string;
  close(): Promise<void>;
}

/** What a receiver does once a request has arrived. */
export type RawAnswer = (socket: Socket) => void;

/** A 500 whose body is exactly `body`, then the connection closed. */
const error500 =
  (body: Buffer): RawAnswer =>
  (socket) => {
    const head = `HTTP/1.1 500 Internal Server Error\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`;
    socket.end(Buffer.concat([Buffer.from(head, 'latin1'), body]));
  };

/** The hostile answers, by name; each attempt against them must still be recorded, readably. */
export const HOSTILE_ANSWERS = {
  /** The reviewed case: NULs in a 500's body. */
  nulBody: error500(Buffer.from('error\0\0\0 detail\0 with NULs\x01\x7f', 'latin1')),
  /** Invalid UTF-8: a stray continuation byte, a truncated sequence, an encoded lone surrogate. */
  invalidUtf8Body: error500(
    Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80]),
  ),
  /** A megabyte of NULs and invalid bytes: more than the client reads. */
  hugeGarbageBody: error500(Buffer.alloc(1024 * 1024, Buffer.from([0x00, 0xff, 0x9b, 0x1b]))),
  /** Not HTTP at all. */
  notHttp: (socket) => socket.end(Buffer.from('\0\x01\x02SSH-2.0-garbage\xff\r\n\r\n', 'latin1')),
  /** A TCP reset instead of an answer. */
  reset: (socket) => socket.resetAndDestroy(),
  /** A 200 whose one header is larger than the client accepts. */
  oversizedHeader: (socket) =>
    socket.end(`HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(64 * 1024)}\r\ncontent-length: 0\r\n\r\n`),
  /** Control characters in the status line's reason phrase and in a header value. */
  controlCharsInStatusLine: (socket) =>
    socket.end(
      Buffer.from(
        'HTTP/1.1 503 Bad\x01\x7fThing\r\nretry-after: \x00\x01\r\ncontent-length: 3\r\nconnection: close\r\n\r\nno\0',
        'latin1',
      ),
    ),
} satisfies Record<string, RawAnswer>;

export type HostileAnswerName = keyof typeof HOSTILE_ANSWERS;

/** A raw TCP receiver on 127.0.0.1 that answers every request with `answer`. */
export async function startRawReceiver(answer: RawAnswer): Promise<RawReceiver> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let received = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (!requestComplete(received)) return;
      socket.off('data', onData);
      answer(socket);
    };
    socket.on('data', onData);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Whether `bytes` hold a request's headers and the whole body their content-length announces. */
function requestComplete(bytes: Buffer): boolean {
  const headEnd = bytes.indexOf('\r\n\r\n');
  if (headEnd < 0) return false;
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(bytes.subarray(0, headEnd).toString('latin1'));
  return bytes.length >= headEnd + 4 + Number(length?.[1] ?? 0);
}
