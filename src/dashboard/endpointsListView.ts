/** The list view of the endpoint health page: filters, one row per endpoint, paging. */
import { html } from 'hono/html';
import type { EndpointCounts, EndpointHealth, EndpointStateFilter } from '../db/endpointHealth.js';
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

export interface ListViewModel {
  paths: PagePaths;
  now: Date;
  rows: readonly EndpointHealth[];
  circuits: CircuitLookup;
  counts: EndpointCounts;
  search: string;
  state: EndpointStateFilter;
  /** The owner filter; '' for every owner. */
  owner: string;
  /** The cursor this page started after; undefined on the first page. */
  afterId: string | undefined;
  /** The cursor of the next page; undefined on the last. */
  nextAfterId: string | undefined;
  pageSize: number;
  defaultStaleAfterDays: number;
  staleWarningDays: number;
  /** HOOKFLEET_FAILING_DISABLE_AFTER_HOURS, the threshold of endpoints without one of their own. */
  failingDisableAfterHours: number;
  flash?: Flash | undefined;
}

const STATE_LABELS: Record<EndpointStateFilter, string> = {
  all: 'All',
  active: 'Active',
  disabled: 'Disabled',
  failing: 'Failing (no success since a failure)',
};

export function endpointsListView(model: ListViewModel): Html {
  const { paths } = model;
  const body = html`<h1>Endpoints</h1>
    <p class="muted">
      Health of every webhook endpoint, with the owner (customer) it belongs to; "—" for
      platform-wide endpoints. Statistics cover the last 24 hours. Open an endpoint to see its
      attempts and failed deliveries, send it a test event, enable or disable it, or replay what
      failed. The queues themselves are in <a href="${paths.queues}">Bull Board</a>.
    </p>
    ${filterForm(model)}
    ${model.rows.length === 0 ? html`<p>No endpoint matches.</p>` : table(model)} ${pager(model)}
    <p class="muted small">
      "Stale in": days until the daily sweep disables an endpoint that has not succeeded (counted
      from its last success, re-enabling or creation; threshold ${model.defaultStaleAfterDays} days
      unless the endpoint sets its own). "Consecutive failures": failed attempts since its last
      success. "Failing since": how long its attempts have been failing with no success (the
      "Failing" filter lists these; re-enabling ends the streak), and when the failing sweep
      disables it.
    </p>`;
  return layout({ title: 'Endpoints', paths, flash: model.flash, body });
}

function filterForm(model: ListViewModel): Html {
  const option = (state: EndpointStateFilter) =>
    html`<option value="${state}" ${model.state === state ? 'selected' : ''}>
      ${STATE_LABELS[state]} (${model.counts[state]})
    </option>`;
  return html`<form class="filters" method="get" action="${model.paths.endpoints}">
    <label
      >Search
      <input
        type="search"
        name="q"
        value="${model.search}"
        placeholder="part of a URL or description, or an id"
        maxlength="200"
    /></label>
    <label
      >Owner
      <input
        type="search"
        name="owner"
        value="${model.owner}"
        placeholder="an owner id"
        maxlength="128"
    /></label>
    <label
      >State
      <select name="state">
        ${(['all', 'active', 'disabled', 'failing'] as const).map(option)}
      </select></label
    >
    <button type="submit" class="primary">Show</button>
    ${model.search !== '' || model.state !== 'all' || model.owner !== '' ? html`<a href="${model.paths.endpoints}">Clear filters</a>` : ''}
  </form>`;
}

function table(model: ListViewModel): Html {
  return html`<table>
    <thead>
      <tr>
        <th>Endpoint</th>
        <th>Owner</th>
        <th>State</th>
        <th>Last success</th>
        <th>Success (24 h)</th>
        <th>Latency mean / p95 (24 h)</th>
        <th>Consecutive failures</th>
        <th>Failing since</th>
        <th>Circuit</th>
        <th>Stale in</th>
      </tr>
    </thead>
    <tbody>
      ${model.rows.map((row) => tableRow(model, row))}
    </tbody>
  </table>`;
}

function tableRow(model: ListViewModel, row: EndpointHealth): Html {
  const { endpoint, stats } = row;
  const link = `${model.paths.endpoints}/${endpoint.id}`;
  return html`<tr data-endpoint="${endpoint.id}">
    <td data-col="endpoint">
      <a href="${link}"><code>${endpoint.id}</code></a>
      <div class="url">${endpoint.url}</div>
      ${endpoint.description === '' ? '' : html`<div class="muted small">${endpoint.description}</div>`}
    </td>
    <td data-col="owner">
      ${
        endpoint.ownerId === null
          ? html`<span class="muted">—</span>`
          : html`<a href="${ownerLink(model, endpoint.ownerId)}"
              ><code>${endpoint.ownerId}</code></a
            >`
      }
    </td>
    <td data-col="state">${stateBadge(endpoint.active, endpoint.deactivationReason)}</td>
    <td data-col="lastSuccess">${timeCell(endpoint.lastSuccessAt, model.now)}</td>
    <td data-col="successRate" class="num" title="${stats.succeeded} of ${stats.attempts} attempts">
      ${percent(stats.successRate)}
    </td>
    <td data-col="latency" class="num">
      ${milliseconds(stats.meanLatencyMs)} / ${milliseconds(stats.p95LatencyMs)}
    </td>
    <td data-col="consecutiveFailures" class="num">${endpoint.consecutiveFailures}</td>
    <td data-col="failingSince">
      ${failingCell({
        active: endpoint.active,
        failingSince: endpoint.failingSince,
        disableAfterHours: endpoint.failingDisableAfterHours ?? model.failingDisableAfterHours,
        now: model.now,
      })}
    </td>
    <td data-col="circuit">${circuitCell(model.circuits, endpoint.id, model.now)}</td>
    <td data-col="staleIn" class="num">
      ${staleCell({
        active: endpoint.active,
        staleAt: row.staleAt,
        staleAfterDays: row.staleAfterDays,
        warningDays: model.staleWarningDays,
        now: model.now,
      })}
    </td>
  </tr>`;
}

/** The list filtered to one owner. */
function ownerLink(model: ListViewModel, ownerId: string): string {
  return `${model.paths.endpoints}?${new URLSearchParams({ owner: ownerId }).toString()}`;
}

function pager(model: ListViewModel): Html {
  if (model.afterId === undefined && model.nextAfterId === undefined) return html``;
  const pageLink = (afterId?: string) => {
    const query = new URLSearchParams();
    if (model.search !== '') query.set('q', model.search);
    if (model.state !== 'all') query.set('state', model.state);
    if (model.owner !== '') query.set('owner', model.owner);
    if (afterId !== undefined) query.set('after', afterId);
    const text = query.toString();
    return text === '' ? model.paths.endpoints : `${model.paths.endpoints}?${text}`;
  };
  return html`<div class="pager">
    <span class="muted">${model.pageSize} endpoints per page, oldest first.</span>
    ${model.afterId === undefined ? '' : html`<a href="${pageLink()}">First page</a>`}
    ${model.nextAfterId === undefined ? '' : html`<a href="${pageLink(model.nextAfterId)}" rel="next">Next page</a>`}
  </div>`;
}
