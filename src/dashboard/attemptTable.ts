/**
 * The table of delivery attempts that the health page's endpoint view (endpointDetailView.ts) and
 * the customer portal (portalView.ts) both show: one row per HTTP attempt, newest first as given.
 * Each page picks its columns from ATTEMPT_COLUMNS and the data attributes its rows carry, which
 * tests and scripts find rows by.
 */
import { html } from 'hono/html';
import type { AttemptSelect } from '../db/attempts.js';
import { milliseconds, timeCell, type Html } from './endpointsPageLayout.js';

export interface AttemptColumn {
  heading: string;
  cell: (attempt: AttemptSelect, now: Date) => Html | string | number;
  /** `num`: right-aligned figures; `small`: long text in a smaller font. */
  className?: 'num' | 'small';
  /** A `data-col` attribute on the cell, for tests that read one cell of a row. */
  dataCol?: string;
}

export const ATTEMPT_COLUMNS = {
  when: { heading: 'When', cell: (a, now) => timeCell(a.attemptedAt, now) },
  time: { heading: 'Time', cell: (a, now) => timeCell(a.attemptedAt, now) },
  message: { heading: 'Message', cell: (a) => html`<code>${a.messageId}</code>` },
  endpoint: { heading: 'Endpoint', cell: (a) => html`<code>${a.endpointId}</code>` },
  attempt: { heading: 'Attempt', className: 'num', cell: (a) => a.attemptNumber },
  /** The outcome as a word, for customers. */
  outcome: { heading: 'Outcome', dataCol: 'outcome', cell: (a) => a.outcome },
  /** The outcome as a coloured badge, for operators scanning for failures. */
  outcomeBadge: { heading: 'Outcome', cell: (a) => outcomeBadge(a.outcome) },
  status: { heading: 'Status', className: 'num', cell: (a) => a.statusCode ?? '—' },
  duration: { heading: 'Duration', className: 'num', cell: (a) => milliseconds(a.durationMs) },
  error: { heading: 'Error', className: 'small', cell: (a) => a.error ?? '' },
} satisfies Record<string, AttemptColumn>;

export interface AttemptTableOptions {
  attempts: readonly AttemptSelect[];
  now: Date;
  columns: readonly AttemptColumn[];
  /** The data attributes of a row, such as html`data-message="${a.messageId}"`. */
  rowAttributes: (attempt: AttemptSelect) => Html;
  /** What stands in place of the table when there is no attempt. */
  empty: string;
  /** Above the table when there are attempts. */
  caption?: Html | undefined;
}

export function attemptTable(options: AttemptTableOptions): Html {
  const { attempts, now, columns } = options;
  if (attempts.length === 0) return html`<p class="muted">${options.empty}</p>`;
  return html`${options.caption ?? ''}
    <table data-table="attempts">
      <thead>
        <tr>
          ${columns.map((column) => html`<th>${column.heading}</th>`)}
        </tr>
      </thead>
      <tbody>
        ${attempts.map(
          (attempt) =>
            html`<tr ${options.rowAttributes(attempt)}>
              ${columns.map((column) => cell(column, attempt, now))}
            </tr>`,
        )}
      </tbody>
    </table>`;
}

function cell(column: AttemptColumn, attempt: AttemptSelect, now: Date): Html {
  const content = column.cell(attempt, now);
  if (column.dataCol !== undefined) return html`<td data-col="${column.dataCol}">${content}</td>`;
  if (column.className !== undefined) return html`<td class="${column.className}">${content}</td>`;
  return html`<td>${content}</td>`;
}

function outcomeBadge(outcome: string): Html {
  if (outcome === 'succeeded') return html`<span class="badge ok">succeeded</span>`;
  if (outcome === 'failed') return html`<span class="badge off">failed</span>`;
  return html`<span class="badge warn">${outcome}</span>`;
}
