import { once } from 'node:events';
import { createServer, connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface TcpProxy {
  port: number;
  /** `url` (a postgres:// or other URL on 127.0.0.1) with this proxy's port: the same service, through the proxy. */
  through(url: string): string;
  /** Drops every open connection and refuses new ones, like a server that went away. */
  cut(): void;
  /** Accepts connections again. */
  restore(): void;
  /**
   * Keeps every connection open but stops passing the client's bytes on: its commands reach the
   * service only on release(), and never if the connection is cut first (a client killed mid-command).
   */
  hold(): void;
  release(): void;
  close(): Promise<void>;
}

/** A TCP proxy on 127.0.0.1 in front of `targetPort`, to take a service away from one client only. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let open = true;
  let holding = false;
  const held = new Map<Socket, { upstream: Socket; chunks: Buffer[] }>();
  const server = createServer((client) => {
    if (!open) return client.destroy();
    const upstream = connect(targetPort, '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    const pending = { upstream, chunks: [] as Buffer[] };
    held.set(client, pending);
    client.on('close', () => held.delete(client));
    client.on('data', (chunk: Buffer) => {
      if (holding) pending.chunks.push(chunk);
      else upstream.write(chunk);
    });
    upstream.pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    through(url) {
      const proxied = new URL(url);
      proxied.port = String((server.address() as AddressInfo).port);
      return proxied.toString();
    },
    cut() {
      open = false;
      for (const socket of sockets) socket.destroy();
    },
    restore() {
      open = true;
    },
    hold() {
      holding = true;
    },
    release() {
      holding = false;
      for (const { upstream, chunks } of held.values()) {
        for (const chunk of chunks.splice(0)) upstream.write(chunk);
      }
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
