import { describe, expect, it } from 'vitest';
import { AuthCache, HeartbeatTicker, XrayProxyModel, type ProxyModelSettings } from '../../src/xray/model.js';
import { EVENT_TYPES } from '../../src/xray/wire/dialect.js';

const extAuth: ProxyModelSettings = { cache: true, ttlMs: 60_000, heartbeatMs: 1000, kickOnDeny: false, events: EVENT_TYPES };
const alice = 'alice';
const ip = '198.51.100.10';

describe('the positive-only cache (§2.6)', () => {
  it('holds an allow for ttl, per (credential, IP), and forgets it when removed', () => {
    const cache = new AuthCache(1000);
    cache.store(alice, ip, 0);
    expect(cache.hit(alice, ip, 999)).toBe(true);
    expect(cache.hit(alice, ip, 1000)).toBe(false);
    expect(cache.hit(alice, '198.51.100.11', 10)).toBe(false);
    expect(cache.hit('bob', ip, 10)).toBe(false);
    cache.remove(alice, ip);
    expect(cache.hit(alice, ip, 10)).toBe(false);
  });

  it('stores nothing with a ttl of 0 (Xray\'s default)', () => {
    const cache = new AuthCache(0);
    cache.store(alice, ip, 0);
    expect(cache.hit(alice, ip, 0)).toBe(false);
  });
});

describe('the heartbeat ticker (a Go time.Ticker, §2.7)', () => {
  it('ticks on its grid while replies are quick', () => {
    const ticker = new HeartbeatTicker(0, 1000);
    expect(ticker.nextAt(0)).toBe(1000);
    ticker.finished(1010);
    expect(ticker.nextAt(1010)).toBe(2000);
  });

  it('after a slow reply fires one buffered tick at once, drops the others, and stays on the grid', () => {
    const ticker = new HeartbeatTicker(0, 1000);
    ticker.finished(3500); // the tick at 1000 took until 3500: ticks 2000 and 3000 fell due
    expect(ticker.nextAt(3500)).toBe(3500);
    ticker.finished(3510);
    expect(ticker.nextAt(3510)).toBe(4000);
  });

  it('a grid that began before now (a connection open a while) ticks within one period', () => {
    const ticker = new HeartbeatTicker(-400, 1000);
    expect(ticker.nextAt(0)).toBe(600);
  });
});

describe('one connection through the proxy', () => {
  it('a miss asks; an allow sends connect, fills the cache, and starts the ticker from admission', () => {
    const model = new XrayProxyModel(extAuth);
    const { connection, step } = model.arrive(alice, ip, 0, 5000);
    expect(step).toEqual({ send: ['authorization'] });
    expect(connection.phase).toBe('authorizing');
    expect(connection.nextHeartbeatAt(0)).toBeUndefined();
    expect(connection.authorized(true, 20)).toEqual({ send: ['connect'] });
    expect(connection.phase).toBe('open');
    expect(connection.nextHeartbeatAt(20)).toBe(1020);
    expect(model.cache.hit(alice, ip, 100)).toBe(true);
  });

  it('a hit for the same (credential, IP) skips authorization but still connects', () => {
    const model = new XrayProxyModel(extAuth);
    model.arrive(alice, ip, 0, 5000).connection.authorized(true, 10);
    expect(model.arrive(alice, ip, 100, 5000).step).toEqual({ send: ['connect'], note: 'cache-hit' });
    expect(model.arrive(alice, '198.51.100.11', 100, 5000).step).toEqual({ send: ['authorization'] });
  });

  it('a refusal sends nothing more and caches nothing', () => {
    const model = new XrayProxyModel(extAuth);
    const { connection } = model.arrive(alice, ip, 0, 5000);
    expect(connection.authorized(false, 10)).toEqual({ send: [], note: 'refused' });
    expect(connection.phase).toBe('refused');
    expect(connection.admitted).toBe(false);
    expect(connection.close()).toEqual({ send: [] });
    expect(model.arrive(alice, ip, 20, 5000).step.send).toEqual(['authorization']);
  });

  it('sends no heartbeat due at or after the end, then one disconnect', () => {
    const model = new XrayProxyModel(extAuth);
    const { connection } = model.arrive(alice, ip, 0, 2000);
    connection.authorized(true, 0);
    expect(connection.nextHeartbeatAt(0)).toBe(1000);
    connection.heartbeatFinished(false, 1005);
    expect(connection.nextHeartbeatAt(1005)).toBeUndefined();
    expect(connection.close()).toEqual({ send: ['disconnect'] });
    expect(connection.close()).toEqual({ send: [] });
    expect(connection.admitted).toBe(true);
  });

  it('a denied heartbeat deletes the cache entry; without kick-on-deny the connection and its heartbeats go on', () => {
    const model = new XrayProxyModel(extAuth);
    const { connection } = model.arrive(alice, ip, 0, 10_000);
    connection.authorized(true, 0);
    expect(connection.heartbeatFinished(true, 1005)).toEqual({ send: [] });
    expect(model.cache.hit(alice, ip, 1010)).toBe(false);
    expect(connection.nextHeartbeatAt(1005)).toBe(2000);
    expect(connection.admitted).toBe(false);
  });

  it('with kick-on-deny a denied heartbeat ends the connection now; its disconnect follows', () => {
    const model = new XrayProxyModel({ ...extAuth, kickOnDeny: true });
    const { connection } = model.arrive(alice, ip, 0, 10_000);
    connection.authorized(true, 0);
    expect(connection.heartbeatFinished(true, 1005)).toEqual({ send: [], note: 'kicked' });
    expect(connection.endMs).toBe(1005);
    expect(connection.nextHeartbeatAt(1005)).toBeUndefined();
    expect(connection.close()).toEqual({ send: ['disconnect'] });
  });

  it('ignores a heartbeat reply that comes after the connection closed (it was cancelled)', () => {
    const model = new XrayProxyModel({ ...extAuth, kickOnDeny: true });
    const { connection } = model.arrive(alice, ip, 0, 10_000);
    connection.authorized(true, 0);
    connection.close();
    expect(connection.heartbeatFinished(true, 1005)).toEqual({ send: [] });
    expect(model.cache.hit(alice, ip, 1010)).toBe(true);
  });

  it('an admission later than the planned end moves the end to it', () => {
    const { connection } = new XrayProxyModel(extAuth).arrive(alice, ip, 0, 50);
    connection.authorized(true, 80);
    expect(connection.endMs).toBe(80);
  });

  it('Hysteria 2: no cache, and nothing after the authorization', () => {
    const model = new XrayProxyModel({ cache: false, ttlMs: 60_000, heartbeatMs: 1000, kickOnDeny: false, events: ['authorization'] });
    const first = model.arrive(alice, ip, 0, 5000).connection;
    expect(first.authorized(true, 10)).toEqual({ send: [] });
    expect(first.nextHeartbeatAt(10)).toBeUndefined();
    expect(first.close()).toEqual({ send: [] });
    expect(model.arrive(alice, ip, 20, 5000).step.send).toEqual(['authorization']);
  });

  it('a connection already open sends nothing until its next tick, which falls within one period', () => {
    const connection = new XrayProxyModel(extAuth).alreadyOpen(alice, ip, 5000, -250);
    expect(connection.phase).toBe('open');
    expect(connection.nextHeartbeatAt(0)).toBe(750);
    expect(connection.close()).toEqual({ send: ['disconnect'] });
  });
});
