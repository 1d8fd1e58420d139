import { describe, expect, it } from 'vitest';
import {
  flashFromQuery,
  outcomeQuery,
  type ActionOutcome,
} from '../../src/dashboard/endpointActions.js';

const parse = (query: string) => Object.fromEntries(new URLSearchParams(query));

describe('outcomeQuery and flashFromQuery', () => {
  it.each<[ActionOutcome, string]>([
    [{ done: 'test-sent', messageId: 'msg_abc123' }, 'Test event msg_abc123 queued'],
    [{ done: 'disabled' }, 'Endpoint disabled'],
    [
      { done: 'replayed', since: '7d', total: 1, retried: 0, enqueued: 1, pending: 0 },
      'Replaying 1 failed delivery from the last 7 days: 0 retried, 1 enqueued again, 0 already pending.',
    ],
    [
      { done: 'replayed', since: '1h', total: 0, retried: 0, enqueued: 0, pending: 0 },
      'nothing to replay',
    ],
  ])('carry %j through the redirect as a line saying "%s"', (outcome, text) => {
    const flash = flashFromQuery(parse(outcomeQuery(outcome)));
    expect(flash?.kind).toBe('ok');
    expect(flash?.text).toContain(text);
  });

  it('shows an error line for a failed action, in words for the codes an operator can act on', () => {
    expect(flashFromQuery({ done: 'failed', code: 'redis_unavailable' })).toEqual({
      kind: 'error',
      text: 'Redis is unreachable, so nothing was sent. Try again in a moment.',
    });
    expect(flashFromQuery({ done: 'failed', code: 'something_else' })?.text).toBe(
      'The action failed (something_else).',
    );
  });

  it('shows nothing of a crafted query: no free text reaches the page', () => {
    expect(flashFromQuery({})).toBeUndefined();
    expect(flashFromQuery({ done: 'Your account is locked, call +1 555' })).toBeUndefined();
    expect(flashFromQuery({ done: 'test-sent', messageId: 'call us at +1 555' })).toBeUndefined();
    expect(
      flashFromQuery({
        done: 'replayed',
        since: '1y',
        total: '1',
        retried: '1',
        enqueued: '0',
        pending: '0',
      }),
    ).toBeUndefined();
    expect(flashFromQuery({ done: 'failed', code: 'Call <b>us</b>' })?.text).toBe(
      'The action failed (internal).',
    );
  });
});
