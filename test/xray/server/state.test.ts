/** The backend's session state: idle expiry, distinct IPs, users swapped as a whole. */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { BackendState } from '../../../src/xray/server/state.js';
import { parseXrayUsers, usersSnapshot } from '../../../src/xray/server/users.js';
import { ERIN_MAX2, USERS, ALICE, BOB_DISABLED, FRANK } from './backend-helpers.js';

describe('session state', () => {
  const users = usersSnapshot(parseXrayUsers(readFileSync(USERS, 'utf8'), 'users.json', 'uuid').users, 'users.json');

  it('expires a session after the idle time, or after 3 observed heartbeat intervals if longer', () => {
    let clock = Date.now();
    const state = new BackendState(users, { kind: 'uuid', sessionIdleMs: 100, now: () => clock });
    state.connect({ credential: ERIN_MAX2, connectionId: 'c1', sourceIp: '192.0.2.1' });
    clock += 101;
    expect(state.sessions()).toHaveLength(0);
    state.connect({ credential: ERIN_MAX2, connectionId: 'c2', sourceIp: '192.0.2.1' });
    clock += 1000;
    state.heartbeat({ credential: ERIN_MAX2, connectionId: 'c2', sourceIp: '192.0.2.1' }); // 1000 ms apart, within... a new session (idle passed)
    clock += 1000;
    state.heartbeat({ credential: ERIN_MAX2, connectionId: 'c2', sourceIp: '192.0.2.1' });
    expect(state.sessions()).toHaveLength(1);
    clock += 2900;
    expect(state.sessions()).toHaveLength(1);
    clock += 200;
    expect(state.sessions()).toHaveLength(0);
  });

  it('counts distinct IPs, with IPv6 spellings and IPv4-mapped addresses as one client', () => {
    const state = new BackendState(users, { kind: 'uuid', sessionIdleMs: 60_000 });
    expect(state.authorize({ credential: ERIN_MAX2, connectionId: 'a', sourceIp: '2001:db8::1' }).allow).toBe(true);
    expect(state.authorize({ credential: ERIN_MAX2, connectionId: 'b', sourceIp: '2001:0db8:0:0::1' }).allow).toBe(true);
    expect(state.authorize({ credential: ERIN_MAX2, connectionId: 'c', sourceIp: '::ffff:192.0.2.7' }).allow).toBe(true);
    expect(state.authorize({ credential: ERIN_MAX2, connectionId: 'd', sourceIp: '192.0.2.7' }).allow).toBe(true);
    expect(state.authorize({ credential: ERIN_MAX2, connectionId: 'e', sourceIp: '192.0.2.8' })).toEqual({ allow: false, reason: 'max-ips' });
    expect(state.liveIps(ERIN_MAX2)).toEqual(new Set(['2001:db8::1', '192.0.2.7']));
  });

  it('takes a new users snapshot as a whole, keeping revocations', () => {
    const state = new BackendState(users, { kind: 'uuid', sessionIdleMs: 60_000 });
    state.revoke(FRANK);
    state.replaceUsers(usersSnapshot(parseXrayUsers(`[{"credential": "${FRANK}"}, {"credential": "${BOB_DISABLED}"}]`, 'n', 'uuid').users, 'n'));
    expect(state.standing(ALICE)).toEqual({ allow: false, reason: 'unknown' });
    expect(state.standing(BOB_DISABLED).allow).toBe(true);
    expect(state.standing(FRANK)).toEqual({ allow: false, reason: 'revoked' });
  });
});
