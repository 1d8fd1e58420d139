import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import { createApp, type ApiDeps } from './app.js';

export interface ApiServerOptions {
  /** Port to listen on; 0 picks a free one (tests). Default config.port. */
  port?: number;
  /** Interface to listen on. Default: every interface. */
  hostname?: string;
  /** How long close() lets requests in flight finish before cutting their connections. Default 5000. */
  closeGraceMs?: number;
}

export interface RunningApiServer {
  /** The port listened on (the real one when 0 was asked for). */
  port: number;
  /**
   * Stops accepting connections, closes idle keep-alive connections at once, lets requests in
   * flight finish (cut after `closeGraceMs`). Safe to call twice.
   */
  close(): Promise<void>;
}

/** Serves createApp(deps) over HTTP with @hono/node-server; resolves once it is listening. */
export async function startApiServer(
  deps: ApiDeps,
  options: ApiServerOptions = {},
): Promise<RunningApiServer> {
  const app = createApp(deps);
  const server = createAdaptorServer({ fetch: app.fetch }) as Server;
  server.listen(options.port ?? deps.config.port, options.hostname);
  await once(server, 'listening'); // rejects with the 'error' event, e.g. EADDRINUSE
  const { port } = server.address() as AddressInfo;
  deps.logger.info({ port }, 'api listening');

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= new Promise<void>((resolve) => {
      const cut = setTimeout(() => server.closeAllConnections(), options.closeGraceMs ?? 5000);
      cut.unref();
      server.close(() => {
        clearTimeout(cut);
        resolve();
      });
      server.closeIdleConnections();
    });
    return closing;
  };
  return { port, close };
}
