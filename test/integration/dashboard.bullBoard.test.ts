import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, createApiHarness, type ApiHarness } from '../helpers/apiHarness.js';

let api: ApiHarness;
beforeAll(async () => {
  api = await createApiHarness();
});
afterAll(async () => {
  await api.close();
});

const admin = {
  authorization: `Basic ${Buffer.from(`${ADMIN.user}:${ADMIN.password}`).toString('base64')}`,
};

describe('Bull Board', () => {
  it.each(['/admin/queues', '/admin/queues/api/queues?page=1&jobsPerPage=10'])(
    'refuses to be shown in a frame: %s',
    async (path) => {
      const res = await api.app.request(path, { headers: admin });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    },
  );
});
