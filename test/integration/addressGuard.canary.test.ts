import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, LookupFunction } from 'node:net';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlockedAddressError, PermanentDeliveryError } from '../../src/errors.js';
import {
  createAddressGuard,
  type AddressGuard,
  type Resolver,
} from '../../src/delivery/addressGuard.js';

/**
 * A canary HTTP server on 127.0.0.1 counts every TCP connection it gets. Deliveries are sent the
 * way the worker sends them (guard.assertUrl, then undici with the guard's lookup); with the
 * default guard the canary must never see a connection.
 *
 * This machine must never send traffic outside 127.0.0.0/8: test resolvers only answer public
 * addresses to checkUrl (which never connects), and every agent's lookup is wrapped so that an
 * answer outside 127.0.0.0/8 fails the test instead of reaching the socket.
 */

async function listen(server: Server, host: string): Promise<number> {
  server.listen(0, host);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

let canary: Server;
let canaryPort = 0;
let canaryConnections = 0;
/** Answers 302 to the canary; lives on 127.0.0.2 so a guard can allow it but not the canary. */
let redirector: Server;
let redirectorPort = 0;
const agents: Agent[] = [];
const nonLoopbackAnswers: string[] = [];

beforeAll(async () => {
  canary = createServer((_req, res) => res.writeHead(200).end('canary'));
  canary.on('connection', () => {
    canaryConnections += 1;
  });
  canaryPort = await listen(canary, '127.0.0.1');
  redirector = createServer((_req, res) => {
    res.writeHead(302, { location: `http://127.0.0.1:${canaryPort}/` }).end();
  });
  redirectorPort = await listen(redirector, '127.0.0.2');
});

afterAll(async () => {
  await Promise.all(agents.map((agent) => agent.close()));
  await Promise.all([close(canary), close(redirector)]);
});

/** The guard's lookup, but an answer outside 127.0.0.0/8 becomes an error before any connect. */
function loopbackOnly(lookup: LookupFunction): LookupFunction {
  const isLoopback = (address: string) => /^(::ffff:)?127\./.test(address);
  return (hostname, options, callback) => {
    lookup(hostname, options, (error, address, family) => {
      const answered = typeof address === 'string' ? [address] : address.map((a) => a.address);
      const outside = answered.filter((a) => a !== '' && !isLoopback(a));
      if (!error && outside.length > 0) {
        nonLoopbackAnswers.push(...outside);
        callback(new Error(`test refused to connect to ${outside.join(', ')}`), '');
        return;
      }
      callback(error, address, family);
    });
  };
}

function agentFor(guard: AddressGuard): Agent {
  const agent = new Agent({ connect: { lookup: loopbackOnly(guard.lookup), timeout: 5_000 } });
  agents.push(agent);
  return agent;
}

/** Sends one request as the worker does; answers the status code or the error that stopped it. */
async function deliver(guard: AddressGuard, agent: Agent, url: string): Promise<number | Error> {
  try {
    const target = guard.assertUrl(url);
    const response = await request(target, { method: 'POST', body: '{}', dispatcher: agent });
    await response.body.dump();
    return response.statusCode;
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

/** undici wraps connect errors; the guard's error may sit a few `cause`s down. */
function guardError(outcome: number | Error): Error | undefined {
  let current: unknown = outcome;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    if (current instanceof PermanentDeliveryError) return current;
    current = current.cause;
  }
  return undefined;
}

const loopbackResolver: Resolver = () => Promise.resolve([{ address: '127.0.0.1', family: 4 }]);

/** First answer public (used by checkUrl at registration, never connected to), then 127.0.0.1. */
function rebindingResolver(): Resolver {
  const answers = ['93.184.216.34'];
  return () => Promise.resolve([{ address: answers.shift() ?? '127.0.0.1', family: 4 }]);
}

/** Loopback spellings of the canary; all but the last two stay refused however the guard is set. */
const loopbackUrls = () => [
  `http://127.0.0.1:${canaryPort}/`,
  `http://2130706433:${canaryPort}/`,
  `http://0x7f.1:${canaryPort}/`,
  `http://0177.0.0.1:${canaryPort}/`,
  `http://127.1:${canaryPort}/`,
  `http://0x7f000001:${canaryPort}/`,
  `http://[::ffff:127.0.0.1]:${canaryPort}/`,
  `http://canary.test:${canaryPort}/`,
];
const alwaysRefusedUrls = () => [
  `http://localhost:${canaryPort}/`,
  `http://canary.localhost:${canaryPort}/`,
  `http://[::ffff:0:7f00:1]:${canaryPort}/`,
  `http://[64:ff9b::7f00:1]:${canaryPort}/`,
  `http://[2002:7f00:1::]:${canaryPort}/`,
];

describe('the default guard', () => {
  it('keeps every loopback spelling of the canary from connecting', async () => {
    const guard = createAddressGuard({ resolve: loopbackResolver });
    const agent = agentFor(guard);
    for (const url of [...loopbackUrls(), ...alwaysRefusedUrls()]) {
      const outcome = await deliver(guard, agent, url);
      expect(guardError(outcome), url).toBeInstanceOf(BlockedAddressError);
    }
    expect(canaryConnections).toBe(0);
  });

  it('checks the address at connect time, so a rebinding name is refused', async () => {
    const guard = createAddressGuard({ resolve: rebindingResolver() });
    const url = `http://rebind.test:${canaryPort}/`;
    const registered = await guard.checkUrl(url);
    expect(registered.addresses).toEqual([{ address: '93.184.216.34', family: 4 }]);
    const outcome = await deliver(guard, agentFor(guard), url);
    expect(guardError(outcome)?.message).toBe(
      'rebind.test resolves to 127.0.0.1, which is a loopback address',
    );
    expect(canaryConnections).toBe(0);
  });

  it('does not follow a redirect to the canary', async () => {
    const guard = createAddressGuard({ allowCidrs: ['127.0.0.2/32'] });
    const outcome = await deliver(guard, agentFor(guard), `http://127.0.0.2:${redirectorPort}/`);
    expect(outcome).toBe(302);
    expect(canaryConnections).toBe(0);
  });
});

describe('a guard allowing 127.0.0.0/8', () => {
  it('lets the loopback spellings reach the canary', async () => {
    const guard = createAddressGuard({ allowCidrs: ['127.0.0.0/8'], resolve: loopbackResolver });
    const agent = agentFor(guard);
    for (const url of loopbackUrls()) {
      expect(await deliver(guard, agent, url), url).toBe(200);
    }
    expect(canaryConnections).toBeGreaterThan(0);
  });

  it('still refuses localhost names and IPv6 forms other than IPv4-mapped', async () => {
    const guard = createAddressGuard({ allowCidrs: ['127.0.0.0/8'], resolve: loopbackResolver });
    const agent = agentFor(guard);
    for (const url of alwaysRefusedUrls()) {
      expect(guardError(await deliver(guard, agent, url)), url).toBeInstanceOf(BlockedAddressError);
    }
  });

  it('lets a rebinding name reach the canary once its loopback answer is allowed', async () => {
    const guard = createAddressGuard({ allowCidrs: ['127.0.0.0/8'], resolve: rebindingResolver() });
    const url = `http://rebind.test:${canaryPort}/`;
    await guard.checkUrl(url);
    const before = canaryConnections;
    expect(await deliver(guard, agentFor(guard), url)).toBe(200);
    expect(canaryConnections).toBeGreaterThan(before);
  });
});

describe('a guard allowing every range', () => {
  it('refuses at connect time a name that answers a metadata address in an IPv6 form', async () => {
    for (const address of ['::ffff:169.254.169.254', '64:ff9b::a9fe:a9fe', '2002:6464:64c8::']) {
      const guard = createAddressGuard({
        allowCidrs: ['0.0.0.0/0', '::/0'],
        resolve: () => Promise.resolve([{ address, family: 6 }]),
      });
      // Were the guard to pass the answer, loopbackOnly would stop it before any connect.
      const outcome = await deliver(guard, agentFor(guard), `http://metadata.test:${canaryPort}/`);
      expect(guardError(outcome)?.message, address).toContain('cloud metadata address');
    }
  });
});

describe('the test itself', () => {
  it('never answered a connect with an address outside 127.0.0.0/8', () => {
    expect(nonLoopbackAnswers).toEqual([]);
  });
});
