import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Prometheus metrics (prom-client: the de-facto Node client, with the text format and default
 * process metrics built in). One registry per process, passed to whatever records into it; the
 * api serves it at /metrics.
 */
export interface Metrics {
  registry: Registry;
  /** Finished deliveries by outcome: succeeded | failed (retries exhausted or permanent). */
  deliveries: Counter<'outcome'>;
  /** Attempts by outcome: succeeded | retrying | failed. */
  attempts: Counter<'outcome'>;
  /** Duration of one HTTP attempt, seconds. */
  attemptDuration: Histogram<'outcome'>;
  /** Attempts a delivery took until it finished. */
  attemptsPerDelivery: Histogram;
  /** How old the oldest pending record was when the success recorder flushed it, seconds. */
  recorderFlushLag: Histogram;
  /** Records waiting in memory for the next flush. */
  recorderPending: Gauge;
  /**
   * Outcome rows PostgreSQL refused even written alone, by what the recorder did: repaired
   * (written with the offending fields replaced) | dropped.
   */
  recorderRowsRefused: Counter<'action'>;
  /** Attempt-history rows dropped because the in-memory bound was reached during an outage. */
  recorderAttemptsDropped: Counter;
  /** Endpoints deactivated, by reason. */
  endpointsDeactivated: Counter<'reason'>;
  /** Deliveries put back without an attempt by the endpoint limits: circuit_open | endpoint_busy | rate_limited. */
  deliveriesPostponed: Counter<'reason'>;
  /** Times an endpoint's circuit opened (after repeated failures, or a failed probe). */
  circuitsOpened: Counter;
  /** Jobs per queue and state (waiting, active, delayed, failed, …), read from Redis when scraped. */
  queueDepth: Gauge<'queue' | 'state'>;
  /** Endpoint rows a worker read from PostgreSQL: its endpoint cache's misses. */
  endpointRowsRead: Counter;
  /** 1 while the worker's last ping through its endpoint-change LISTEN came back, else 0. */
  endpointChangesHeard: Gauge;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true)
    collectDefaultMetrics({ register: registry, prefix: 'hookfleet_' });
  const registers = [registry];
  return {
    registry,
    deliveries: new Counter({
      name: 'hookfleet_deliveries_total',
      help: 'Finished deliveries by outcome',
      labelNames: ['outcome'],
      registers,
    }),
    attempts: new Counter({
      name: 'hookfleet_attempts_total',
      help: 'Delivery attempts by outcome',
      labelNames: ['outcome'],
      registers,
    }),
    attemptDuration: new Histogram({
      name: 'hookfleet_attempt_duration_seconds',
      help: 'Duration of one HTTP delivery attempt',
      labelNames: ['outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15],
      registers,
    }),
    attemptsPerDelivery: new Histogram({
      name: 'hookfleet_attempts_per_delivery',
      help: 'Attempts a delivery took until it finished',
      buckets: [1, 2, 3, 4, 5, 6, 8],
      registers,
    }),
    recorderFlushLag: new Histogram({
      name: 'hookfleet_recorder_flush_lag_seconds',
      help: 'Age of the oldest record written by a success-recorder flush',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
      registers,
    }),
    recorderPending: new Gauge({
      name: 'hookfleet_recorder_pending_records',
      help: 'Attempt records waiting for the next success-recorder flush',
      registers,
    }),
    recorderRowsRefused: new Counter({
      name: 'hookfleet_recorder_rows_refused_total',
      help: 'Outcome rows PostgreSQL refused even alone, by action: repaired (offending fields replaced) or dropped',
      labelNames: ['action'],
      registers,
    }),
    recorderAttemptsDropped: new Counter({
      name: 'hookfleet_recorder_attempts_dropped_total',
      help: 'Attempt-history rows a worker dropped, oldest first, when its buffer filled while PostgreSQL was unreachable',
      registers,
    }),
    endpointsDeactivated: new Counter({
      name: 'hookfleet_endpoints_deactivated_total',
      help: 'Endpoints deactivated, by reason',
      labelNames: ['reason'],
      registers,
    }),
    deliveriesPostponed: new Counter({
      name: 'hookfleet_deliveries_postponed_total',
      help: 'Deliveries postponed without an attempt by the per-endpoint limits, by reason',
      labelNames: ['reason'],
      registers,
    }),
    circuitsOpened: new Counter({
      name: 'hookfleet_circuits_opened_total',
      help: 'Times an endpoint circuit opened after repeated failures or a failed probe',
      registers,
    }),
    queueDepth: new Gauge({
      name: 'hookfleet_queue_jobs',
      help: 'Jobs per queue and state, read from Redis at scrape time',
      labelNames: ['queue', 'state'],
      registers,
    }),
    endpointRowsRead: new Counter({
      name: 'hookfleet_endpoint_rows_read_total',
      help: 'Endpoint rows read from PostgreSQL by the worker (endpoint cache misses)',
      registers,
    }),
    endpointChangesHeard: new Gauge({
      name: 'hookfleet_endpoint_changes_heard',
      help: '1 while endpoint change notifications reach this worker (its last ping came back), else 0; at 0 it re-reads endpoint rows every HOOKFLEET_ENDPOINT_CACHE_MS',
      registers,
    }),
  };
}
