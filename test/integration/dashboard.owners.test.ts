import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertEndpoint } from '../../src/db/endpoints.js';
import { ADMIN, callApp, createApiHarness, type ApiHarness } from '../helpers/apiHarness.js';

let api: ApiHarness;
beforeAll(async () => {
  api = await createApiHarness();
});
afterAll(async () => {
  await api.close();
});

const BASIC = `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString('base64')}`;
const get = (path: string) =>
  callApp(api.app, 'GET', path, { anonymous: true, headers: { authorization: BASIC } });

const add = (ownerId?: string) =>
  insertEndpoint(api.fleet.db.db, { url: 'http://127.0.0.1:9/hook', ownerId }).then((r) => r.id);

function ownerCell(html: string, id: string): string | undefined {
  const row = new RegExp(`<tr data-endpoint="${id}">[\\s\\S]*?</tr>`).exec(html)?.[0];
  const cell = row && /<td data-col="owner"[^>]*>([\s\S]*?)<\/td>/.exec(row)?.[1];
  return cell
    ?.replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

describe('endpoint health page: owners', () => {
  it('shows each endpoint’s owner, and filters the list and its counts to one owner', async () => {
    const a = await add('org_a');
    const b = await add('org_b');
    const none = await add();
    const all = await get('/admin/endpoints');
    expect(all.status).toBe(200);
    expect(ownerCell(all.text, a)).toBe('org_a');
    expect(ownerCell(all.text, b)).toBe('org_b');
    expect(ownerCell(all.text, none)).toBe('—');
    expect(all.text).toContain('href="/admin/endpoints?owner=org_a"');

    const onlyA = await get('/admin/endpoints?owner=org_a');
    expect(ownerCell(onlyA.text, a)).toBe('org_a');
    expect(ownerCell(onlyA.text, b)).toBeUndefined();
    expect(ownerCell(onlyA.text, none)).toBeUndefined();
    expect(onlyA.text).toMatch(/All \(1\)/);
    expect(onlyA.text).toContain('value="org_a"');

    const detail = await get(`/admin/endpoints/${a}`);
    expect(detail.text).toMatch(/<dd data-fact="owner">\s*<code>org_a<\/code>/);
  });

  it('answers 400 naming the rule for an owner filter outside the safe set', async () => {
    const res = await get('/admin/endpoints?owner=%3Cscript%3E');
    expect(res.status).toBe(400);
    expect(res.text).toContain('owner must be 1 to 128 letters, digits and _ - . : @');
    expect(res.text).not.toContain('<script>');
  });
});
