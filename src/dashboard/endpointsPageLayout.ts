/**
 * The frame of the endpoint health pages: head, styles, navigation, flash line, error
 * page, and the cell formats both views share. Everything is built with Hono's `html` tagged
 * template, which escapes every interpolated value: a URL or description containing markup is
 * shown as text. Only the templates below are markup.
 */
import { html, raw } from 'hono/html';
import type { CircuitState } from '../delivery/endpointLimits.js';
import { daysUntil, exactTime, relativeTime } from './relativeTime.js';

export type Html = ReturnType<typeof html>;

/** Where the views link to; the API server mounts the pages and the board there (app.ts). */
export interface PagePaths {
  /** The health page, e.g. '/admin/endpoints'. */
  endpoints: string;
  /** Bull Board, e.g. '/admin/queues'. */
  queues: string;
  /**
   * Bull Board's name of the `deliveries` shard a message's jobs are in (queueShards.ts).
   * Default: 'deliveries', the only one with one shard on one node.
   */
  deliveriesQueueOf?: (messageId: string) => string;
}

export interface Flash {
  kind: 'ok' | 'error';
  text: string;
}

/**
 * The document every page is: head with the styles (and `head`, e.g. a script), a header, the
 * optional flash line, then `body`. The operator pages (layout) and the customer portal
 * (portalView.ts) differ only in their title, header and head.
 */
export function pageShell(options: {
  title: string;
  head?: Html | undefined;
  header: Html;
  flash?: Flash | undefined;
  body: Html;
}): Html {
  const { title, head, header, flash, body } = options;
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${title}</title>
        <style>
          ${raw(STYLES)}
        </style>
        ${head ?? ''}
      </head>
      <body>
        <header>${header}</header>
        <main>
          ${flash === undefined ? '' : html`<p class="flash ${flash.kind}" role="status">${flash.text}</p>`}
          ${body}
        </main>
      </body>
    </html>`;
}

/** An operator page: the shell with hookfleet's navigation. */
export function layout(options: {
  title: string;
  paths: PagePaths;
  flash?: Flash | undefined;
  body: Html;
}): Html {
  const { title, paths, flash, body } = options;
  return pageShell({
    title: `${title} · hookfleet`,
    header: html`<strong>hookfleet</strong>
      <nav>
        <a href="${paths.endpoints}">Endpoints</a>
        <a href="${paths.queues}">Queues (Bull Board)</a>
      </nav>`,
    flash,
    body,
  });
}

/** An error as a page: the status, the `{code, detail}` pair, and a way back. */
export function errorPage(paths: PagePaths, code: string, detail: string): Html {
  return layout({
    title: 'Error',
    paths,
    body: html`<h1>${detail}</h1>
      <p class="muted">Error code: <code>${code}</code></p>
      <p><a href="${paths.endpoints}">Back to all endpoints</a></p>`,
  });
}

/** "3 days ago" with the exact time on hover; "never" when there is no time. */
export function timeCell(date: Date | null, now: Date, never = 'never'): Html {
  if (date === null) return html`<span class="muted">${never}</span>`;
  return html`<time datetime="${date.toISOString()}" title="${exactTime(date)}"
    >${relativeTime(date, now)}</time
  >`;
}

/** A share as a percentage with one decimal at most: 0.975 -> "97.5 %". */
export function percent(share: number | null): string {
  if (share === null) return '—';
  return `${Math.round(share * 1000) / 10} %`;
}

export function milliseconds(value: number | null): string {
  return value === null ? '—' : `${value} ms`;
}

/** The state cell: "active", or "disabled" with the reason the sweep or an operator gave. */
export function stateBadge(active: boolean, reason: string | null): Html {
  if (active) return html`<span class="badge ok">active</span>`;
  return html`<span class="badge off">disabled</span
    >${reason === null ? '' : html` <span class="muted">(${reason})</span>`}`;
}

/**
 * The circuit states of a page's endpoints: a map, `'absent'` when no breaker is wired in, or
 * `'unavailable'` when asking it failed (the page still renders).
 */
export type CircuitLookup = ReadonlyMap<string, CircuitState> | 'absent' | 'unavailable';

export function circuitCell(lookup: CircuitLookup, endpointId: string, now: Date): Html {
  if (lookup === 'absent')
    return html`<span class="muted" title="no circuit breaker reports here">—</span>`;
  if (lookup === 'unavailable')
    return html`<span class="muted" title="the circuit states could not be read">unknown</span>`;
  const circuit = lookup.get(endpointId);
  if (circuit === undefined) return html`<span class="muted">—</span>`;
  if (circuit.state === 'closed') return html`<span class="badge ok">closed</span>`;
  if (circuit.state === 'half-open') return html`<span class="badge warn">half-open</span>`;
  return html`<span class="badge off">open</span>${
      circuit.retryAt === undefined
        ? ''
        : html` <span class="small">retry ${timeCell(circuit.retryAt, now)}</span>`
    }`;
}

/**
 * Days until the sweep disables an endpoint that does not succeed before then; a warning colour
 * inside the warning window, "due" once the deadline passed (the next sweep disables it).
 */
export function staleCell(options: {
  active: boolean;
  staleAt: Date;
  staleAfterDays: number;
  warningDays: number;
  now: Date;
}): Html {
  const { active, staleAt, staleAfterDays, warningDays, now } = options;
  if (!active)
    return html`<span class="muted" title="the sweep only disables active endpoints">—</span>`;
  const days = daysUntil(staleAt, now);
  const title = `threshold ${staleAfterDays} days; deadline ${exactTime(staleAt)}`;
  if (days < 0) return html`<span class="badge off" title="${title}">due</span>`;
  const text = days === 1 ? '1 day' : `${days} days`;
  return days < warningDays
    ? html`<span class="badge warn" title="${title}">${text}</span>`
    : html`<span title="${title}">${text}</span>`;
}

/**
 * "Failing since": when the endpoint's attempts started failing with no success since, and when
 * the failing sweep disables it (its failingSince plus its threshold in hours); a warning badge
 * from half of it, when `endpoint.failing_warning` is sent. A dash when it is not failing.
 */
export function failingCell(options: {
  active: boolean;
  failingSince: Date | null;
  disableAfterHours: number;
  now: Date;
}): Html {
  const { active, failingSince, disableAfterHours, now } = options;
  if (failingSince === null) return html`<span class="muted">—</span>`;
  const since = timeCell(failingSince, now);
  if (!active) return since;
  const hourMs = 3_600_000;
  const disableAt = new Date(failingSince.getTime() + disableAfterHours * hourMs);
  const title = `disabled after ${disableAfterHours} hours of failures; at ${exactTime(disableAt)}`;
  const warned = now.getTime() - failingSince.getTime() >= (disableAfterHours * hourMs) / 2;
  return html`${since}
    <div class="small" title="${title}">
      <span class="${warned ? 'badge warn' : 'muted'}"
        >disabled ${relativeTime(disableAt, now)}</span
      >
    </div>`;
}

// A page of its own, with no script: the pages are plain forms and links. The customer portal
// (portalView.ts) shares them.
export const STYLES = `
:root { color-scheme: light; font: 14px/1.45 system-ui, sans-serif; color: #1f2328; }
body { margin: 0; background: #f6f8fa; }
header { display: flex; gap: 2rem; align-items: baseline; padding: .75rem 1.5rem; background: #24292f; color: #fff; }
header a { color: #fff; margin-right: 1rem; }
main { padding: 1rem 1.5rem 3rem; }
h1 { font-size: 1.35rem; margin: .5rem 0; word-break: break-all; }
h2 { font-size: 1.1rem; margin: 1.75rem 0 .5rem; }
a { color: #0969da; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid #d0d7de; }
th, td { text-align: left; vertical-align: top; padding: .4rem .6rem; border-bottom: 1px solid #d0d7de; }
th { background: #eaeef2; font-weight: 600; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.url, code { font-family: ui-monospace, monospace; font-size: .92em; word-break: break-all; }
.muted { color: #656d76; }
.small { font-size: .9em; }
.badge { display: inline-block; padding: 0 .45rem; border-radius: 1rem; font-size: .85em; font-weight: 600; }
.badge.ok { background: #dafbe1; color: #116329; }
.badge.off { background: #ffebe9; color: #a40e26; }
.badge.warn { background: #fff8c5; color: #7d4e00; }
.flash { padding: .6rem .9rem; border-radius: .4rem; border: 1px solid; }
.flash.ok { background: #dafbe1; border-color: #4ac26b; }
.flash.error { background: #ffebe9; border-color: #ff8182; }
form.filters { display: flex; flex-wrap: wrap; gap: .75rem; align-items: end; margin: .75rem 0; }
form.filters input[type=search] { width: 24rem; max-width: 100%; }
label { display: inline-flex; flex-direction: column; gap: .15rem; font-weight: 600; }
input, select, button { font: inherit; padding: .3rem .5rem; }
button { cursor: pointer; border: 1px solid #d0d7de; border-radius: .4rem; background: #f6f8fa; }
button.primary { background: #1f883d; border-color: #1a7f37; color: #fff; }
button.danger { color: #cf222e; }
button:disabled { cursor: not-allowed; opacity: .55; }
.actions { display: flex; flex-wrap: wrap; gap: 1rem; align-items: end; padding: .75rem; background: #fff; border: 1px solid #d0d7de; }
.actions form { display: flex; gap: .5rem; align-items: end; margin: 0; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1.25rem; background: #fff; border: 1px solid #d0d7de; padding: .75rem; margin: 0; }
dl.facts dt { font-weight: 600; color: #656d76; }
dl.facts dd { margin: 0; }
.pager { margin: .75rem 0; display: flex; gap: 1rem; }
`;
