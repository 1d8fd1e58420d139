/**
 * The customer portal's HTML: one owner's endpoints with their health, recent messages and
 * attempts, forms to add and edit an endpoint, replay its failures. Server-rendered with Hono's
 * escaping `html` tag, styled like the operator pages (endpointsPageLayout.ts) but without their
 * navigation: a customer sees nothing of the fleet. The one script is the token exchange
 * (portalPage.ts), allowed by its hash in the page's CSP.
 */
import { html, raw } from 'hono/html';
import type { AttemptSelect } from '../db/attempts.js';
import type { EndpointHealth } from '../db/endpointHealth.js';
import type { OwnerMessage } from '../db/ownerActivity.js';
import { ATTEMPT_COLUMNS, attemptTable } from './attemptTable.js';
import { deliverySettingsFields } from './portalSettingsForm.js';
import {
  pageShell,
  percent,
  stateBadge,
  failingCell,
  staleCell,
  timeCell,
  type Flash,
  type Html,
} from './endpointsPageLayout.js';

export interface PortalFrame {
  /** Where the portal is mounted, e.g. '/portal'. */
  base: string;
  /** The token exchange script, inlined as is (its hash is in the CSP). */
  script: string;
}

export function portalLayout(
  frame: PortalFrame,
  options: { title: string; ownerId?: string | undefined; flash?: Flash | undefined; body: Html },
): Html {
  const { title, ownerId, flash, body } = options;
  return pageShell({
    title,
    head: scriptElement(frame.script),
    header: html`<strong>Webhooks</strong> ${
        ownerId === undefined
          ? ''
          : html`<nav>
              <a href="${frame.base}">Endpoints</a
              ><span class="small">Account <code>${ownerId}</code></span>
            </nav>`
      }`,
    flash,
    body,
  });
}

/** Built as a string: the CSP allows the script by the hash of its exact text, whitespace too. */
function scriptElement(script: string): Html {
  return html`${raw(`<script>${script}</script>`)}`;
}

/** What a visitor without a usable session sees (the script exchanges a token in the fragment). */
export function portalSignedOut(frame: PortalFrame, detail: string): Html {
  return portalLayout(frame, {
    title: 'Webhooks',
    body: html`<h1 id="portal-status">${detail}</h1>
      <p class="muted">Open the webhook settings from your account to get a new link.</p>`,
  });
}

export interface PortalHomeModel {
  ownerId: string;
  now: Date;
  endpoints: readonly EndpointHealth[];
  messages: readonly OwnerMessage[];
  attempts: readonly AttemptSelect[];
  staleWarningDays: number;
  /** HOOKFLEET_FAILING_DISABLE_AFTER_HOURS. */
  failingDisableAfterHours: number;
  flash?: Flash | undefined;
  /** The secret of the endpoint just added: shown this once. */
  created?: { id: string; secret: string } | undefined;
}

export function portalHome(frame: PortalFrame, model: PortalHomeModel): Html {
  const body = html`<h1>Webhook endpoints</h1>
    ${
      model.created === undefined
        ? ''
        : html`<div class="flash ok" role="status" data-secret="${model.created.id}">
            Endpoint <code>${model.created.id}</code> added. Its signing secret, shown only now:
            <code id="new-secret">${model.created.secret}</code>
          </div>`
    }
    ${model.endpoints.length === 0 ? html`<p>No endpoint yet.</p>` : endpointTable(frame, model)}
    <h2>Add an endpoint</h2>
    ${endpointForm(frame, `${frame.base}/endpoints`, 'Add endpoint')}
    <h2>Recent messages</h2>
    ${messageTable(model)}
    <h2>Recent delivery attempts</h2>
    ${attemptsTable(model.attempts, model.now)}`;
  return portalLayout(frame, {
    title: 'Webhook endpoints',
    ownerId: model.ownerId,
    flash: model.flash,
    body,
  });
}

function endpointTable(frame: PortalFrame, model: PortalHomeModel): Html {
  return html`<table>
    <thead>
      <tr>
        <th>Endpoint</th>
        <th>State</th>
        <th>Last success</th>
        <th>Success (24 h)</th>
        <th>Failures in a row</th>
        <th>Failing since</th>
        <th>Disabled in</th>
        <th></th>
      </tr>
    </thead>
    <tbody>
      ${model.endpoints.map(
        ({ endpoint, stats, staleAt, staleAfterDays }) =>
          html`<tr data-endpoint="${endpoint.id}">
            <td>
              <div class="url">${endpoint.url}</div>
              <div class="muted small">
                ${endpoint.description}
                ${endpoint.eventTypes.length === 0 ? 'all events' : endpoint.eventTypes.join(', ')}
              </div>
            </td>
            <td>${stateBadge(endpoint.active, endpoint.deactivationReason)}</td>
            <td data-col="lastSuccess">${timeCell(endpoint.lastSuccessAt, model.now)}</td>
            <td data-col="successRate" class="num">${percent(stats.successRate)}</td>
            <td class="num">
              ${endpoint.consecutiveFailures}${
                endpoint.lastFailureAt === null
                  ? ''
                  : html`<div class="small muted">
                      last ${timeCell(endpoint.lastFailureAt, model.now)}
                    </div>`
              }
            </td>
            <td data-col="failingSince">
              ${failingCell({
                active: endpoint.active,
                failingSince: endpoint.failingSince,
                disableAfterHours:
                  endpoint.failingDisableAfterHours ?? model.failingDisableAfterHours,
                now: model.now,
              })}
            </td>
            <td class="num">
              ${staleCell({
                active: endpoint.active,
                staleAt,
                staleAfterDays,
                warningDays: model.staleWarningDays,
                now: model.now,
              })}
            </td>
            <td><a href="${frame.base}/endpoints/${endpoint.id}">Manage</a></td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

function endpointForm(
  frame: PortalFrame,
  action: string,
  submit: string,
  values: { url?: string; description?: string; eventTypes?: readonly string[] } = {},
  settings?: Html,
): Html {
  return html`<form class="actions" method="post" action="${action}">
    <label
      >URL <input name="url" type="url" required maxlength="2048" value="${values.url ?? ''}"
    /></label>
    <label
      >Event types
      <input
        name="eventTypes"
        placeholder="all, or e.g. invoice.paid, order.*"
        value="${(values.eventTypes ?? []).join(', ')}"
    /></label>
    <label
      >Description <input name="description" maxlength="1000" value="${values.description ?? ''}"
    /></label>
    ${settings ?? ''}
    <button type="submit" class="primary">${submit}</button>
  </form>`;
}

function messageTable(model: PortalHomeModel): Html {
  if (model.messages.length === 0) return html`<p class="muted">No message yet.</p>`;
  return html`<table>
    <thead>
      <tr>
        <th>Message</th>
        <th>Event type</th>
        <th>Sent</th>
        <th>Endpoints</th>
      </tr>
    </thead>
    <tbody>
      ${model.messages.map(
        (message) =>
          html`<tr data-message="${message.id}">
            <td><code>${message.id}</code></td>
            <td><code>${message.eventType}</code></td>
            <td>${timeCell(message.createdAt, model.now)}</td>
            <td class="num">${message.endpointIds.length}</td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

/** The customer's view of attempts: which endpoint, plain outcomes, no attempt numbers. */
function attemptsTable(attempts: readonly AttemptSelect[], now: Date): Html {
  const c = ATTEMPT_COLUMNS;
  return attemptTable({
    attempts,
    now,
    columns: [c.when, c.message, c.endpoint, c.outcome, c.status, c.duration, c.error],
    rowAttributes: (attempt) =>
      html`data-attempt-message="${attempt.messageId}" data-attempt-endpoint="${attempt.endpointId}"`,
    empty: 'No attempt yet.',
  });
}

export interface PortalEndpointModel {
  ownerId: string;
  now: Date;
  health: EndpointHealth;
  /** HOOKFLEET_RETRY_SCHEDULE, shown for endpoints without a schedule of their own. */
  defaultRetryScheduleMs: readonly number[];
  attempts: readonly AttemptSelect[];
  flash?: Flash | undefined;
}

/** One endpoint: edit it, enable or disable it, replay its failures, see its attempts. */
export function portalEndpoint(frame: PortalFrame, model: PortalEndpointModel): Html {
  const { endpoint } = model.health;
  const path = `${frame.base}/endpoints/${endpoint.id}`;
  const body = html`<h1>${endpoint.url}</h1>
    <p>
      ${stateBadge(endpoint.active, endpoint.deactivationReason)} · last success
      ${timeCell(endpoint.lastSuccessAt, model.now)} · <code>${endpoint.id}</code>
    </p>
    <h2>Settings</h2>
    ${endpointForm(
      frame,
      path,
      'Save',
      endpoint,
      deliverySettingsFields(endpoint, model.defaultRetryScheduleMs),
    )}
    <h2>Actions</h2>
    <div class="actions">
      <form method="post" action="${path}/${endpoint.active ? 'disable' : 'enable'}">
        <button type="submit">${endpoint.active ? 'Disable' : 'Enable'}</button>
      </form>
      <form method="post" action="${path}/replay">
        <button type="submit" ${endpoint.active ? '' : 'disabled'}>
          Replay failed deliveries of the last 7 days
        </button>
      </form>
    </div>
    <h2>Recent delivery attempts</h2>
    ${attemptsTable(model.attempts, model.now)}`;
  return portalLayout(frame, {
    title: 'Endpoint',
    ownerId: model.ownerId,
    flash: model.flash,
    body,
  });
}
