/**
 * The detail view of the endpoint health page: the endpoint's facts, its buttons (test event,
 * enable / disable, replay failed deliveries), its failed deliveries and its newest attempts.
 * Every button is a form that POSTs and is redirected back here (see endpointsPage.ts).
 */
import { html } from 'hono/html';
import type { AttemptSelect } from '../db/attempts.js';
import type { EndpointHealth } from '../db/endpointHealth.js';
import type { FailedDelivery } from '../db/failedDeliveries.js';
import { maskHeaders } from '../delivery/endpointHeaders.js';
import { durationText } from '../duration.js';
import { DELIVERIES_QUEUE, deliveryJobId } from '../jobs.js';
import { ATTEMPT_COLUMNS, attemptTable } from './attemptTable.js';
import { REPLAY_WINDOWS } from './endpointActions.js';
import {
  circuitCell,
  layout,
  milliseconds,
  percent,
  stateBadge,
  failingCell,
  staleCell,
  timeCell,
  type CircuitLookup,
  type Flash,
  type Html,
  type PagePaths,
} from './endpointsPageLayout.js';

export interface DetailViewModel {
  paths: PagePaths;
  now: Date;
  health: EndpointHealth;
  circuits: CircuitLookup;
  attempts: readonly AttemptSelect[];
  failed: readonly FailedDelivery[];
  /** How many rows each of the two tables shows at most. */
  rowLimit: number;
  staleWarningDays: number;
  /** HOOKFLEET_FAILING_DISABLE_AFTER_HOURS. */
  failingDisableAfterHours: number;
  /** HOOKFLEET_RETRY_SCHEDULE, shown for endpoints without a schedule of their own. */
  defaultRetryScheduleMs: readonly number[];
  flash?: Flash | undefined;
}

export function endpointDetailView(model: DetailViewModel): Html {
  const { endpoint } = model.health;
  const body = html`<p><a href="${model.paths.endpoints}">← All endpoints</a></p>
    <h1><code>${endpoint.id}</code></h1>
    <p class="url">${endpoint.url}</p>
    ${facts(model)}
    <h2>Actions</h2>
    ${actions(model)}
    <h2>Failed deliveries</h2>
    ${failedTable(model)}
    <h2>Recent attempts</h2>
    ${attemptsTable(model)}`;
  return layout({ title: endpoint.id, paths: model.paths, flash: model.flash, body });
}

function facts(model: DetailViewModel): Html {
  const { now } = model;
  const { endpoint, stats } = model.health;
  return html`<dl class="facts">
    <dt>State</dt>
    <dd data-fact="state">
      ${stateBadge(endpoint.active, endpoint.deactivationReason)}${
        endpoint.deactivatedAt === null
          ? ''
          : html` <span class="small">since ${timeCell(endpoint.deactivatedAt, now)}</span>`
      }
    </dd>
    <dt>Owner</dt>
    <dd data-fact="owner">
      ${
        endpoint.ownerId === null
          ? html`<span class="muted">none (platform-wide: messages without an owner)</span>`
          : html`<code>${endpoint.ownerId}</code>`
      }
    </dd>
    <dt>Description</dt>
    <dd>
      ${endpoint.description === '' ? html`<span class="muted">none</span>` : endpoint.description}
    </dd>
    <dt>Event types</dt>
    <dd>${endpoint.eventTypes.length === 0 ? 'every type' : endpoint.eventTypes.join(', ')}</dd>
    <dt>Last success</dt>
    <dd data-fact="lastSuccess">${timeCell(endpoint.lastSuccessAt, now)}</dd>
    <dt>Last failure</dt>
    <dd>${timeCell(endpoint.lastFailureAt, now)}</dd>
    <dt>Consecutive failures</dt>
    <dd data-fact="consecutiveFailures">${endpoint.consecutiveFailures}</dd>
    <dt>Success (24 h)</dt>
    <dd data-fact="successRate">
      ${percent(stats.successRate)}
      <span class="muted">(${stats.succeeded} of ${stats.attempts} attempts)</span>
    </dd>
    <dt>Latency (24 h)</dt>
    <dd data-fact="latency">
      mean ${milliseconds(stats.meanLatencyMs)}, p95 ${milliseconds(stats.p95LatencyMs)}
    </dd>
    <dt>All time</dt>
    <dd>${endpoint.successCount} succeeded, ${endpoint.failureCount} failed attempts</dd>
    <dt>Circuit</dt>
    <dd data-fact="circuit">${circuitCell(model.circuits, endpoint.id, now)}</dd>
    <dt>Rate limit</dt>
    <dd data-fact="rateLimit">
      ${
        endpoint.rateLimitPerSecond === null
          ? html`<span class="muted">none (in-flight limit only)</span>`
          : `${endpoint.rateLimitPerSecond} requests per second`
      }
    </dd>
    <dt>Failing since</dt>
    <dd data-fact="failingSince">
      ${failingCell({
        active: endpoint.active,
        failingSince: endpoint.failingSince,
        disableAfterHours: endpoint.failingDisableAfterHours ?? model.failingDisableAfterHours,
        now,
      })}
      <span class="muted small"
        >(disabled after ${endpoint.failingDisableAfterHours ?? model.failingDisableAfterHours}
        hours of failures${endpoint.failingDisableAfterHours === null ? ', the default' : ''})</span
      >
    </dd>
    <dt>Stale in</dt>
    <dd data-fact="staleIn">
      ${staleCell({
        active: endpoint.active,
        staleAt: model.health.staleAt,
        staleAfterDays: model.health.staleAfterDays,
        warningDays: model.staleWarningDays,
        now,
      })}
      <span class="muted small"
        >(threshold ${model.health.staleAfterDays}
        days${endpoint.staleAfterDays === null ? ', the default' : ''})</span
      >
    </dd>
    ${deliverySettings(model)}
    <dt>Created</dt>
    <dd>${timeCell(endpoint.createdAt, now)}</dd>
    ${
      endpoint.reactivatedAt === null
        ? ''
        : html`<dt>Re-enabled</dt>
            <dd>${timeCell(endpoint.reactivatedAt, now)}</dd>`
    }
  </dl>`;
}

/** What the endpoint's deliveries look like: body format, custom headers (values masked), retries. */
function deliverySettings(model: DetailViewModel): Html {
  const { endpoint } = model.health;
  const headerNames = Object.keys(maskHeaders(endpoint.headers));
  const schedule = endpoint.retryScheduleMs ?? model.defaultRetryScheduleMs;
  return html`<dt>Payload</dt>
    <dd data-fact="payloadFormat">
      ${
        endpoint.payloadFormat === 'raw'
          ? html`raw <span class="muted small">(the payload alone)</span>`
          : html`envelope <span class="muted small">(type, timestamp, data)</span>`
      }
    </dd>
    <dt>Custom headers</dt>
    <dd data-fact="headers">
      ${
        headerNames.length === 0
          ? html`<span class="muted">none</span>`
          : headerNames.map(
              (name, i) =>
                html`${i === 0 ? '' : ', '}<code>${name}</code>
                  <span class="muted">(value hidden)</span>`,
            )
      }
    </dd>
    <dt>Retry schedule</dt>
    <dd data-fact="retrySchedule">
      ${schedule.map(durationText).join(', ')}
      ${
        endpoint.retryScheduleMs === null
          ? html`<span class="muted small">(the default)</span>`
          : html`<span class="muted small">(its own)</span>`
      }
    </dd>`;
}

function actions(model: DetailViewModel): Html {
  const { endpoint } = model.health;
  const base = `${model.paths.endpoints}/${endpoint.id}`;
  const inactive = !endpoint.active;
  const note = inactive
    ? html`<p class="muted small">
        The endpoint is disabled: enable it before sending a test event or replaying.
      </p>`
    : '';
  const toggle = endpoint.active
    ? html`<form method="post" action="${base}/disable">
        <button type="submit" class="danger">Disable</button>
      </form>`
    : html`<form method="post" action="${base}/enable">
        <button type="submit" class="primary">Enable</button>
      </form>`;
  return html`<div class="actions">
      <form method="post" action="${base}/test">
        <button type="submit" ${inactive ? 'disabled' : ''}>Send a test event</button>
      </form>
      ${toggle}
      <form method="post" action="${base}/replay">
        <label
          >Replay failed deliveries from
          <select name="since">
            ${Object.entries(REPLAY_WINDOWS).map(
              ([value, window]) =>
                html`<option value="${value}" ${value === '24h' ? 'selected' : ''}>
                  ${window.label}
                </option>`,
            )}
          </select>
        </label>
        <button type="submit" class="primary" ${inactive ? 'disabled' : ''}>Replay</button>
      </form>
    </div>
    ${note}`;
}

function failedTable(model: DetailViewModel): Html {
  if (model.failed.length === 0) return html`<p class="muted">No failed deliveries.</p>`;
  const { paths, now } = model;
  const more =
    model.failed.length >= model.rowLimit
      ? html`<p class="muted small">
          The newest ${model.rowLimit} are shown; a replay covers all of them in the window it is
          given.
        </p>`
      : '';
  return html`<p class="muted small">
      Deliveries whose last attempt failed and that will not be tried again unless replayed. Message
      ids link to the delivery job in Bull Board.
    </p>
    <table data-table="failed">
      <thead>
        <tr>
          <th>Failed</th>
          <th>Message</th>
          <th>Event type</th>
          <th>Attempts</th>
          <th>Status</th>
          <th>Error</th>
        </tr>
      </thead>
      <tbody>
        ${model.failed.map(
          (row) =>
            html`<tr data-message="${row.messageId}">
              <td>${timeCell(row.failedAt, now)}</td>
              <td>
                <a
                  href="${paths.queues}/queue/${paths.deliveriesQueueOf?.(row.messageId) ?? DELIVERIES_QUEUE}/${deliveryJobId(row.messageId, row.endpointId)}"
                  ><code>${row.messageId}</code></a
                >
              </td>
              <td>${row.eventType}</td>
              <td class="num">${row.attemptNumber}</td>
              <td class="num">${row.statusCode ?? '—'}</td>
              <td class="small">${row.error ?? ''}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    ${more}`;
}

function attemptsTable(model: DetailViewModel): Html {
  const c = ATTEMPT_COLUMNS;
  return attemptTable({
    attempts: model.attempts,
    now: model.now,
    columns: [c.time, c.message, c.attempt, c.outcomeBadge, c.status, c.duration, c.error],
    rowAttributes: (attempt) => html`data-message="${attempt.messageId}"`,
    empty: 'No attempts recorded yet.',
    caption: html`<p class="muted small">
      The newest ${model.rowLimit} HTTP attempts, newest first.
    </p>`,
  });
}
