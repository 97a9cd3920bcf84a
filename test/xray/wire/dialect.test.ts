import { describe, expect, it } from 'vitest';
import { buildEventBody, parseEventBody, BadEventError, goIpText, type ConnectionFacts } from '../../../src/xray/wire/dialect.js';
import { wiki } from '../../../src/xray/wire/dialects/wiki.js';
import { src } from '../../../src/xray/wire/dialects/src.js';
import { hysteria2 } from '../../../src/xray/wire/dialects/hysteria2.js';
import { uuidFromText, xrayCredential } from '../../../src/xray/wire/credential.js';
import { thrownBy } from '../../helpers.js';

const facts: ConnectionFacts = {
  credential: '550e8400-e29b-41d4-a716-446655440000', connectionId: 'a3f1c2d4-9b8e-4f1a-b2c3-d4e5f6a7b8c9', protocol: 'vless',
  inboundTag: 'my-inbound', sourceIp: '1.2.3.4', sourcePort: 52341, localIp: '10.0.0.1', localPort: 443,
};

describe('request bodies, as Go marshals them', () => {
  it('writes the src dialect exactly as the spec example, protocol absent on authorization', () => {
    expect(buildEventBody(src, 'authorization', facts)).toBe(
      '{"type":"authorization","connection_id":"a3f1c2d4-9b8e-4f1a-b2c3-d4e5f6a7b8c9","inbound_tag":"my-inbound","credential":"550e8400-e29b-41d4-a716-446655440000","ip":"1.2.3.4","local_ip":"10.0.0.1"}',
    );
  });

  it('adds protocol on a src heartbeat and brackets IPv6, folding IPv4-mapped addresses', () => {
    const body = buildEventBody(src, 'heartbeat', { ...facts, sourceIp: '2001:db8::1', localIp: '::ffff:10.0.0.1', inboundTag: undefined });
    expect(body).toBe('{"type":"heartbeat","protocol":"vless","connection_id":"a3f1c2d4-9b8e-4f1a-b2c3-d4e5f6a7b8c9","credential":"550e8400-e29b-41d4-a716-446655440000","ip":"[2001:db8::1]","local_ip":"10.0.0.1"}');
  });

  it('writes the wiki dialect in camelCase with ports, hints and a unix timestamp', () => {
    const body = JSON.parse(buildEventBody(wiki, 'connect', { ...facts, email: 'alice@example.com', level: 0 }, new Date(1710000000_000)));
    expect(body).toEqual({
      type: 'connect', credential: facts.credential, connection: facts.connectionId, email: 'alice@example.com', level: 0, protocol: 'vless',
      inboundTag: 'my-inbound', sourceIP: '1.2.3.4', sourcePort: 52341, localIP: '10.0.0.1', localPort: 443, timestamp: 1710000000,
    });
  });

  it('writes Hysteria 2 {addr, auth, tx} with tx as a uint64 beyond 2^53', () => {
    expect(buildEventBody(hysteria2, 'authorization', { ...facts, sourceIp: '2001:db8::1', sourcePort: 5566, credential: 'user:pass', tx: '9223372036854775808' }))
      .toBe('{"addr":"[2001:db8::1]:5566","auth":"user:pass","tx":9223372036854775808}');
  });

  it('reads what it writes, and names what is wrong in a bad body', () => {
    for (const dialect of [wiki, src, hysteria2]) {
      const parsed = parseEventBody(dialect, buildEventBody(dialect, 'authorization', { ...facts, tx: '12500000' }));
      expect(parsed.facts.credential).toBe(facts.credential);
    }
    expect(parseEventBody(hysteria2, '{"addr":"[::1]:9","auth":"x","tx":18446744073709551615}').facts).toMatchObject({ sourceIp: '::1', sourcePort: 9, tx: '18446744073709551615' });
    expect(thrownBy(BadEventError, () => parseEventBody(src, '{"type":"authorization"}')).message).toMatch(/"credential" is missing/);
    expect(thrownBy(BadEventError, () => parseEventBody(src, '{"type":"bogus","credential":"x"}')).message).toMatch(/"type" must be one of/);
    expect(thrownBy(BadEventError, () => parseEventBody(src, '{"credential":"x"}')).message).toMatch(/"type" is missing/);
    expect(thrownBy(BadEventError, () => parseEventBody(wiki, 'not json')).message).toMatch(/not JSON/);
    expect(parseEventBody(src, '{"type":"connect","credential":"x","flow":"v"}').unknownKeys).toEqual(['flow']);
  });

  it('renders addresses as Go does', () => {
    expect(goIpText('2001:0db8::1')).toBe('[2001:db8::1]');
    expect(goIpText('::ffff:1.2.3.4')).toBe('1.2.3.4');
    expect(goIpText('@abstract')).toBe('@abstract');
  });
});

describe('credentials as Xray sends them', () => {
  it('lower-cases a UUID and turns a short text id into its UUIDv5', () => {
    expect(xrayCredential('550E8400-E29B-41D4-A716-446655440000').credential).toBe('550e8400-e29b-41d4-a716-446655440000');
    const text = xrayCredential('alice');
    // Python's uuid.uuid5(uuid.UUID(int=0), 'alice'), an independent implementation.
    expect(text.credential).toBe('ec61d669-fc85-586b-a097-822a49b51e7e');
    expect(uuidFromText('alice')).toBe(text.credential);
    expect(text.credential).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

describe('conformance fixtures', async () => {
  const { parseFixture } = await import('../../../src/xray/suite/fixture.js');
  const { InputError } = await import('../../../src/shared/errors.js');
  const alice = '550e8400-e29b-41d4-a716-446655440000';

  it('refuses a revoke hook that would leave an allowed user revoked', () => {
    expect(thrownBy(InputError, () => parseFixture({ allowed: [alice], revoke: { url: 'http://x/revoke' } }, 'f.json', true)).message)
      .toMatch(/f\.json: "revoke" needs a "restore" hook/);
    expect(parseFixture({ allowed: [alice], revoke: { url: 'http://x/revoke', credential: '11111111-1111-4111-8111-111111111111' } }, 'f.json', true).revoke).toBeDefined();
  });

  it('names the field of a bad entry, and an unset variable in a hook header', () => {
    expect(thrownBy(InputError, () => parseFixture({ denied: [{ credential: alice, why: 5 }] }, 'f.json', true)).message).toBe('f.json: "denied"[0].why must be a string');
    expect(thrownBy(InputError, () => parseFixture({ allowed: [alice], revoke: { url: 'http://x/', credential: alice, restore: { url: 'http://x/r', headers: { A: '${AUTHKIT_UNSET_VAR}' } } } }, 'f.json', true)).message)
      .toMatch(/"revoke".restore.headers.A names \$\{AUTHKIT_UNSET_VAR\}, which is not set/);
  });
});
