import { afterAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { fromHex, vectors } from '../helpers.js';
import { TrialAuthenticator, trialAuthenticate } from '../../src/snell/model.js';
import { buildFirstPacket } from '../../src/snell/wire/first-packet.js';
import { selectKdf } from '../../src/snell/wire/kdf.js';
import { IpCache } from '../../src/snell/scan/ip-cache.js';
import { canonicalIp } from '../../src/shared/ip.js';
import type { SnellUser } from '../../src/snell/user-store.js';

const kdf = await selectKdf();
const users: SnellUser[] = Array.from({ length: 100 }, (_, i) => ({ name: `user-${i}`, psk: `psk-${i}-${randomBytes(6).toString('hex')}` }));
const frameFor = async (psk: string): Promise<Uint8Array> =>
  (await buildFirstPacket({ psk, kdf, request: { command: 'connect-v2', clientId: new Uint8Array(0), host: 'example.com', port: 443 } })).wire;

const auth = await TrialAuthenticator.create(users, { kdf });
afterAll(() => auth.close());

describe('trial authentication paths (OpenSnell alpha, docs/snell.md §9)', () => {
  it.each([0, 1, 49, 50, 51, 99])('finds user %i of 100 on the parallel path', async (index) => {
    const outcome = await auth.authenticate(await frameFor(users[index]!.psk));
    expect(outcome).toMatchObject({ ok: true, index, user: `user-${index}`, path: 'parallel' });
    if (outcome.ok) expect(outcome.trials).toBeGreaterThanOrEqual(1);
  });

  it('scans all 100 users on a miss and reports no-match', async () => {
    const outcome = await auth.authenticate(await frameFor('not-a-user'));
    expect(outcome).toMatchObject({ ok: false, reason: 'no-match', trials: 100 });
  });

  it('scans up to 16 users serially in file order, costing position + 1 trials', async () => {
    const outcome = await trialAuthenticate(users.slice(0, 16), await frameFor(users[11]!.psk), { kdf });
    expect(outcome).toMatchObject({ ok: true, index: 11, path: 'serial', trials: 12 });
  });

  it('uses the source-IP cache: a hit costs one derivation', async () => {
    const cached = await TrialAuthenticator.create(users, { kdf });
    const blob = await frameFor(users[70]!.psk);
    expect(await cached.authenticate(blob, '198.51.100.7')).toMatchObject({ ok: true, path: 'parallel' });
    expect(await cached.authenticate(await frameFor(users[70]!.psk), '198.51.100.7')).toMatchObject({ ok: true, index: 70, path: 'cache', trials: 1 });
    // IPv4-mapped IPv6 is the same client to OpenSnell's extractIP.
    expect(await cached.authenticate(blob, '::ffff:198.51.100.7')).toMatchObject({ path: 'cache', trials: 1 });
    await cached.close();
  });

  it('falls through a stale cache entry to the scan, which tries the cached user again', async () => {
    const small = await TrialAuthenticator.create(users.slice(0, 4), { kdf });
    await small.authenticate(await frameFor(users[3]!.psk), '203.0.113.9');
    const outcome = await small.authenticate(await frameFor(users[1]!.psk), '203.0.113.9');
    // 1 stale cache trial, then the serial scan matches at index 1 (2 trials).
    expect(outcome).toMatchObject({ ok: true, index: 1, path: 'serial', trials: 3 });
    await small.close();
  });

  it('keeps stale indexes after a snapshot replacement but never authorises the wrong user', async () => {
    const rotating = await TrialAuthenticator.create(users.slice(0, 3), { kdf });
    await rotating.authenticate(await frameFor(users[2]!.psk), '192.0.2.1');
    rotating.replaceUsers([users[2]!, users[0]!]);
    const outcome = await rotating.authenticate(await frameFor(users[2]!.psk), '192.0.2.1');
    expect(outcome).toMatchObject({ ok: true, user: 'user-2', index: 0, path: 'serial' });
    await rotating.close();
  });

  it('fails closed on an empty store', async () => {
    expect(await trialAuthenticate([], await frameFor('x'), { kdf })).toMatchObject({ ok: false, reason: 'empty-store', trials: 0 });
  });

  it('reports a capture shorter than 39 bytes as truncated, with its length', async () => {
    const blob = (await frameFor(users[0]!.psk)).subarray(0, 20);
    expect(await auth.authenticate(blob)).toMatchObject({ ok: false, reason: 'truncated', bytes: 20 });
  });

  it('recognises legacy v1 (ChaCha20) and v2 (AES, CONNECT-v2) streams and names their user', async () => {
    const [v1, v2] = vectors.legacy_first_packets;
    const legacyUsers = [{ name: 'other', psk: 'other' }, { name: 'legacy', psk: 'password' }];
    expect(await trialAuthenticate(legacyUsers, fromHex(v1.wire_hex), { kdf })).toMatchObject({ ok: false, reason: 'legacy-v1', user: 'legacy', index: 1 });
    expect(await trialAuthenticate(legacyUsers, fromHex(v2.wire_hex), { kdf })).toMatchObject({ ok: false, reason: 'legacy-v2', user: 'legacy' });
    const v3 = await buildFirstPacket({ psk: 'password', version: 3, kdf, request: { command: 'connect', clientId: new Uint8Array(0), host: 'a.example', port: 80 } });
    expect(await trialAuthenticate(legacyUsers, v3.wire, { kdf })).toMatchObject({ ok: false, reason: 'legacy-v3' });
    expect(await trialAuthenticate(legacyUsers, fromHex(v1.wire_hex), { kdf, detectLegacy: false })).toMatchObject({ ok: false, reason: 'no-match' });
  });

  it('cannot tell v2 from v3 when the capture ends before the request', async () => {
    const v3 = await buildFirstPacket({ psk: 'password', version: 3, kdf, request: { command: 'connect', clientId: new Uint8Array(0), host: 'a.example', port: 80 } });
    const outcome = await trialAuthenticate([{ name: 'legacy', psk: 'password' }], v3.wire.subarray(0, 39), { kdf });
    expect(outcome).toMatchObject({ ok: false, reason: 'legacy-v2-v3', user: 'legacy' });
  });

  it('reports what the server spent on a legacy stream: the v4 scan, not authkit\'s legacy pass', async () => {
    const legacyUsers = [...users.slice(0, 5), { name: 'legacy', psk: 'password' }];
    const outcome = await trialAuthenticate(legacyUsers, fromHex(vectors.legacy_first_packets[0].wire_hex), { kdf });
    expect(outcome).toMatchObject({ ok: false, reason: 'legacy-v1', index: 5, trials: 6 });
  });

  it('diagnoses a legacy stream with the scan\'s own derivations: one Argon2id per user on a miss', async () => {
    let derivations = 0;
    const counting = { ...kdf, name: kdf.name, deriveSync: (psk: Uint8Array, salt: Uint8Array) => (derivations++, kdf.deriveSync!(psk, salt)) };
    const legacyUsers = [...users.slice(0, 9), { name: 'legacy', psk: 'password' }, ...users.slice(9, 14)];
    const authenticator = await TrialAuthenticator.create(legacyUsers, { kdf: counting });
    derivations = 0;
    const outcome = await authenticator.authenticate(fromHex(vectors.legacy_first_packets[1].wire_hex));
    await authenticator.close();
    expect(outcome).toMatchObject({ ok: false, reason: 'legacy-v2', index: 9, trials: 15 });
    expect(derivations).toBe(15);
  });

  it('finds legacy streams on the parallel path too', async () => {
    const many = [...users.slice(0, 40), { name: 'legacy', psk: 'password' }];
    const outcome = await trialAuthenticate(many, fromHex(vectors.legacy_first_packets[0].wire_hex), { kdf });
    expect(outcome).toMatchObject({ ok: false, reason: 'legacy-v1', index: 40 });
  });
});

describe('the scan pool', () => {
  it('scans a snapshot again after more than four others were used since', async () => {
    const snapshots = Array.from({ length: 6 }, (_, k) => users.slice(k, k + 40));
    const rotating = await TrialAuthenticator.create(snapshots[0]!, { kdf });
    for (const snapshot of [...snapshots.slice(1), snapshots[0]!]) {
      rotating.replaceUsers(snapshot);
      expect(await rotating.authenticate(await frameFor(snapshot[30]!.psk))).toMatchObject({ ok: true, index: 30, path: 'parallel' });
    }
    await rotating.close();
  });

  it('rejects a scan that is running when the authenticator is closed, instead of leaving it pending', async () => {
    // 30,000 users: a scan of about half a second, so it is still running 5 ms later however busy the machine.
    const many = Array.from({ length: 30_000 }, (_, i) => ({ name: `m${i}`, psk: `m${i}` }));
    const closing = await TrialAuthenticator.create(many, { kdf });
    const blob = await frameFor('nobody');
    const rejected = expect(closing.authenticate(blob)).rejects.toThrow(/scan pool closed/);
    await new Promise((resolve) => setTimeout(resolve, 5));
    await closing.close();
    await rejected;
  });
});

describe('the IP cache', () => {
  it('holds at most its capacity, evicting an entry when full', () => {
    const cache = new IpCache(3);
    ['a', 'b', 'c', 'd'].forEach((ip, i) => cache.set(ip, i));
    expect(cache.size).toBe(3);
    expect(cache.get('d')).toBe(3);
  });

  it('keys one spelling per address, IPv4-mapped IPv6 as IPv4', () => {
    expect(canonicalIp('::FFFF:10.1.2.3')).toBe('10.1.2.3');
    expect(canonicalIp('::ffff:7f00:1')).toBe('127.0.0.1');
    expect(canonicalIp('2001:DB8::1')).toBe('2001:db8::1');
    expect(canonicalIp('2001:0db8:0::1')).toBe('2001:db8::1');
    const cache = new IpCache();
    cache.set('2001:0db8:0:0::1', 7);
    expect(cache.get('2001:db8::1')).toBe(7);
  });
});
