/** xray-backend in the hysteria2 dialect (H01-H14). */
import { describe, expect, it } from 'vitest';
import { dialectNamed } from '../../../src/xray/wire/dialects/index.js';
import { type XrayBackend } from '../../../src/xray/server/server.js';
import { HY_USERS, SECRET, type Started, start, type Raw, raw, admin, useBackends } from './backend-helpers.js';

useBackends();

describe('xray-backend hysteria2 dialect', () => {
  const hy = (): Promise<Started> => start({ dialect: dialectNamed('hysteria2'), usersFile: HY_USERS, secret: SECRET });
  const auth = async (backend: XrayBackend, credential: string, addr = '203.0.113.5:40000', tx = '0'): Promise<Raw> =>
    raw(backend.url, `{"addr":${JSON.stringify(addr)},"auth":${JSON.stringify(credential)},"tx":${tx}}`);

  it('allows with 200 {"ok":true,"id"} and denies with 200 {"ok":false} (H01, H02)', async () => {
    const backend = await hy();
    const allowed = await auth(backend, 'alice-2c5f9e1b7d');
    expect(allowed.status).toBe(200);
    expect(allowed.text).toBe('{"ok":true,"id":"alice"}');
    for (const credential of ['nobody', 'bob:hunter2-7a41', 'carol-8e02b6d3f1', 'dave-5b7c0a9e24', '', 'ALICE-2C5F9E1B7D']) {
      const denied = await auth(backend, credential);
      expect(denied.status, credential).toBe(200);
      expect(denied.text).toBe('{"ok":false}');
    }
  });

  it('gives a stable id over 20 reconnects and takes any tx, IPv6 addr and auth size (H03, H07, H08, H09)', async () => {
    const backend = await hy();
    for (let i = 0; i < 20; i++) expect((await auth(backend, 'alice-2c5f9e1b7d', `198.51.100.1:${40000 + i}`)).json).toEqual({ ok: true, id: 'alice' });
    expect((await auth(backend, 'alice-2c5f9e1b7d', '[2001:db8::1]:5566', '9223372036854775808')).json).toEqual({ ok: true, id: 'alice' });
    expect((await auth(backend, 'alice-2c5f9e1b7d', '[2001:db8::1]:5566', '12500000')).json).toEqual({ ok: true, id: 'alice' });
    expect((await auth(backend, 'ü'.repeat(600))).json).toEqual({ ok: false });
  });

  it('answers 400 to malformed requests, never ok:true (H10)', async () => {
    const backend = await hy();
    for (const body of ['nope', '{}', '{"addr":"1.2.3.4:5","tx":0}', '{"addr":"1.2.3.4:5","auth":"alice-2c5f9e1b7d","tx":-1}', '{"addr":5,"auth":"alice-2c5f9e1b7d"}']) {
      const reply = await raw(backend.url, body);
      expect(reply.status, body).toBe(400);
      expect(reply.text).not.toContain('"ok":true');
    }
  });

  it('denies a revoked user on the reconnect after a kick (H11)', async () => {
    const backend = await hy();
    expect((await admin(backend, '/admin/revoke', { credential: 'alice-2c5f9e1b7d' })).status).toBe(200);
    expect((await auth(backend, 'alice-2c5f9e1b7d')).json).toEqual({ ok: false });
  });

  it('limits a maxIps user to k source addresses (H14)', async () => {
    const backend = await hy();
    expect((await auth(backend, 'erin-d4e91f2a60', '192.0.2.1:1000')).json).toEqual({ ok: true, id: 'erin' });
    expect((await auth(backend, 'erin-d4e91f2a60', '[2001:db8::9]:1000')).json).toEqual({ ok: true, id: 'erin' });
    expect((await auth(backend, 'erin-d4e91f2a60', '192.0.2.1:2000')).json).toEqual({ ok: true, id: 'erin' });
    expect((await auth(backend, 'erin-d4e91f2a60', '192.0.2.3:1000')).json).toEqual({ ok: false });
  });
});
