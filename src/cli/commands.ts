/** The `hookfleet` commands: one file each in this folder, loaded only when run. */
export interface Command {
  summary: string;
  load: () => Promise<{ run: (argv: string[]) => Promise<number> }>;
}

export const commands: Record<string, Command> = {
  start: {
    summary: 'run the whole fleet in one process (migrate, api, worker, scheduler)',
    load: () => import('./start.js'),
  },
  worker: { summary: 'run a delivery worker process', load: () => import('./worker.js') },
  api: { summary: 'run the HTTP API and the Bull Board dashboard', load: () => import('./api.js') },
  migrate: { summary: 'apply pending database migrations', load: () => import('./migrate.js') },
  endpoints: {
    summary: 'list, add, show, enable, disable, test endpoints or rotate their secret',
    load: () => import('./endpoints.js'),
  },
  send: { summary: 'send a message to the subscribed endpoints', load: () => import('./send.js') },
  messages: {
    summary: "show a message's deliveries and attempts, or redeliver it",
    load: () => import('./messages.js'),
  },
  failed: {
    summary: "list failed deliveries, or replay an endpoint's since a time",
    load: () => import('./failed.js'),
  },
  bench: { summary: 'run the benchmarks (source checkout)', load: () => import('./bench.js') },
  sweep: {
    summary: 'deactivate stale endpoints now (--dry-run to only report)',
    load: () => import('./sweep.js'),
  },
};
