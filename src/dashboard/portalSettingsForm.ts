/**
 * The customer portal's form for an endpoint's delivery settings (payload format, rate limit,
 * retry schedule, custom headers): the fields the edit page shows (portalView.ts), and what they
 * mean as a change (portalPage.ts), by the rules of PATCH /v1/endpoints/:id.
 */
import { html } from 'hono/html';
import { z } from 'zod';
import type { EndpointFacts } from '../db/endpointHealth.js';
import { rateLimitPerSecondSchema } from '../delivery/endpointInput.js';
import {
  endpointHeadersChangeSchema,
  MASKED_HEADER_VALUE,
  maskHeaders,
} from '../delivery/endpointHeaders.js';
import { PAYLOAD_FORMATS } from '../delivery/envelope.js';
import { retryScheduleSchema } from '../delivery/retrySchedule.js';
import { durationText } from '../duration.js';
import { HookfleetError } from '../errors.js';
import type { Html } from './endpointsPageLayout.js';

/** The settings' fields, to extend the endpoint form's schema with; absent ones are left alone. */
export const deliverySettingsShape = {
  payloadFormat: z.enum(PAYLOAD_FORMATS).optional(),
  rateLimitPerSecond: rateLimitPerSecondSchema.nullable().optional(),
  retrySchedule: retryScheduleSchema.nullable().optional(),
  headers: endpointHeadersChangeSchema,
};

/**
 * The edit form's delivery settings: body format, rate limit, retry schedule and custom headers.
 * Header values are never written into the page (the API masks them too): each existing header
 * has an empty field that replaces its value when filled, and a box that removes it.
 */
export function deliverySettingsFields(
  endpoint: EndpointFacts,
  defaultRetryScheduleMs: readonly number[],
): Html {
  const headerNames = Object.keys(maskHeaders(endpoint.headers));
  const option = (value: string, label: string) =>
    html`<option value="${value}" ${endpoint.payloadFormat === value ? 'selected' : ''}>
      ${label}
    </option>`;
  return html`<label
      >Payload
      <select name="payloadFormat">
        ${option('envelope', 'envelope: {"type", "timestamp", "data"}')}
        ${option('raw', 'raw: the payload alone')}
      </select></label
    >
    <label
      >Rate limit (requests per second)
      <input
        name="rateLimitPerSecond"
        inputmode="numeric"
        placeholder="none"
        value="${endpoint.rateLimitPerSecond ?? ''}"
    /></label>
    <label
      >Retry schedule
      <input
        name="retrySchedule"
        placeholder="default: ${defaultRetryScheduleMs.map(durationText).join(', ')}"
        value="${(endpoint.retryScheduleMs ?? []).map(durationText).join(', ')}"
    /></label>
    <table data-table="headers">
      <thead>
        <tr>
          <th>Custom header</th>
          <th>Value</th>
          <th>Remove</th>
        </tr>
      </thead>
      <tbody>
        ${headerNames.map(
          (name) =>
            html`<tr data-header="${name}">
              <td><code>${name}</code></td>
              <td>
                <input
                  name="header:${name}"
                  type="password"
                  autocomplete="off"
                  placeholder="${MASKED_HEADER_VALUE} (unchanged)"
                  aria-label="New value of ${name}"
                />
              </td>
              <td>
                <input
                  type="checkbox"
                  name="removeHeader"
                  value="${name}"
                  aria-label="Remove ${name}"
                />
              </td>
            </tr>`,
        )}
        <tr>
          <td>
            <input name="newHeaderName" placeholder="a new header" aria-label="New header name" />
          </td>
          <td>
            <input
              name="newHeaderValue"
              type="password"
              autocomplete="off"
              aria-label="New header value"
            />
          </td>
          <td></td>
        </tr>
      </tbody>
    </table>`;
}

/**
 * The settings a posted form gives, as PATCH /v1/endpoints/:id would take them. A setting the form
 * does not send is left alone; an empty rate limit or retry schedule restores the default; a
 * header's value field left empty keeps the value, its box removes it, and the last row adds one.
 */
export function deliverySettingsFromForm(
  form: Record<string, unknown>,
  current: Readonly<Record<string, string>>,
): Record<string, unknown> {
  const text = (name: string) => {
    const value = form[name];
    return typeof value === 'string' ? value.trim() : undefined;
  };
  const headers: Record<string, string | null> = {};
  for (const name of Object.keys(current)) {
    const value = text(`header:${name}`);
    if (value) headers[name] = value;
  }
  const newName = text('newHeaderName');
  const newValue = text('newHeaderValue');
  if (newName) headers[newName] = newValue ?? '';
  else if (newValue) {
    const message = 'a new header needs a name as well as a value';
    throw new HookfleetError('validation_failed', `headers: ${message}`, 422, [
      { path: 'headers', message },
    ]);
  }
  const removed = form.removeHeader;
  for (const name of Array.isArray(removed) ? removed : [removed]) {
    if (typeof name === 'string' && name in current) headers[name] = null;
  }
  return {
    payloadFormat: text('payloadFormat'),
    rateLimitPerSecond: emptyIsDefault(text('rateLimitPerSecond'), (value) =>
      /^\d{1,9}$/.test(value) ? Number(value) : value,
    ),
    retrySchedule: emptyIsDefault(text('retrySchedule'), (value) =>
      value.split(',').map((step) => step.trim()),
    ),
    headers,
  };
}

/** Undefined (not sent: unchanged), null (sent empty: the default), or `parse` of the value. */
function emptyIsDefault(value: string | undefined, parse: (value: string) => unknown): unknown {
  if (value === undefined) return undefined;
  return value === '' ? null : parse(value);
}
