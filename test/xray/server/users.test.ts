/** The users file of xray-backend: its formats, its errors, and what it warns about. */
import { describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { uuidFromText } from '../../../src/xray/wire/credential.js';
import { loadXrayUsers, parseXrayUsers } from '../../../src/xray/server/users.js';
import { USERS, HY_USERS, ALICE, FRANK, inputError, useTempDir } from './backend-helpers.js';

const dir = useTempDir();

describe('users file', () => {
  it('reads a JSON array and JSON Lines, lower-cases UUIDs and fills in defaults', () => {
    const entries = [
      { credential: ALICE.toUpperCase(), email: 'a@x', level: 7 },
      { credential: FRANK, enabled: false, expiresAt: '2030-01-31T00:00:00Z', quotaBytes: 10, usedBytes: 3, maxIps: 2 },
      { credential: 'short-text-id', expiresAt: 1900000000 },
    ];
    for (const text of [JSON.stringify(entries, null, 2), entries.map((e) => JSON.stringify(e)).join('\n') + '\n']) {
      const { users } = parseXrayUsers(text, 'u', 'uuid');
      expect(users.map((u) => u.credential)).toEqual([ALICE, FRANK, uuidFromText('short-text-id')]);
      expect(users[0]).toMatchObject({ email: 'a@x', level: 7, enabled: true, usedBytes: 0 });
      expect(users[1]).toMatchObject({ enabled: false, expiresAt: Date.parse('2030-01-31T00:00:00Z'), quotaBytes: 10, usedBytes: 3, maxIps: 2, level: 0 });
      expect(users[2]!.expiresAt).toBe(1900000000 * 1000);
    }
  });

  it('keeps Hysteria 2 auth strings exactly', () => {
    const { users } = parseXrayUsers('[{"credential": "User:Pass ü"}, {"credential": "user:pass ü"}]', 'h', 'text');
    expect(users.map((u) => u.credential)).toEqual(['User:Pass ü', 'user:pass ü']);
  });

  it('loads the fixtures', async () => {
    expect((await loadXrayUsers(USERS, 'uuid')).snapshot.users).toHaveLength(7);
    expect((await loadXrayUsers(HY_USERS, 'text')).snapshot.users).toHaveLength(6);
  });

  it('names the file, the line of the entry and the field, never the credential', () => {
    const lines = Array.from({ length: 8 }, (_, i) => `  {"credential": "${randomUUID()}", "email": "u${i}@x"}`);
    const bad = (entry: string, at = 5): string => {
      const copy = [...lines];
      copy[at] = `  ${entry}`;
      return inputError(() => parseXrayUsers(`[\n${copy.join(',\n')}\n]`, 'users.json', 'uuid'));
    };
    expect(bad(`{"credential": "${FRANK}", "level": -1}`)).toBe('users.json:7: "level" must be an integer 0..4294967295');
    expect(bad(`{"credential": "${FRANK}", "level": 4294967296}`)).toBe('users.json:7: "level" must be an integer 0..4294967295');
    expect(bad(`{"credential": "${FRANK}", "level": 1.5}`)).toBe('users.json:7: "level" must be an integer 0..4294967295');
    expect(bad(`{"credential": "${FRANK}", "enabled": "yes"}`)).toBe('users.json:7: "enabled" must be true or false');
    expect(bad(`{"credential": "${FRANK}", "maxIps": 0}`)).toBe('users.json:7: "maxIps" must be an integer 1..4294967295 (leave it out for no limit)');
    expect(bad(`{"credential": "${FRANK}", "quotaBytes": -5}`)).toMatch(/^users\.json:7: "quotaBytes" must be an integer 0\.\./);
    expect(bad(`{"credential": "${FRANK}", "expiresAt": "next week"}`)).toMatch(/^users\.json:7: "expiresAt" must be an ISO date/);
    expect(bad(`{"credential": "${FRANK}", "expiresAt": 1900000000000}`)).toBe('users.json:7: "expiresAt" looks like milliseconds; give unix seconds or an ISO date');
    expect(bad(`{"credential": "${FRANK}", "maxIPs": 2}`)).toMatch(/^users\.json:7: unknown field "maxIPs" \(known: credential, email/);
    expect(bad(`{"credential": "${FRANK}", "email": ""}`)).toBe('users.json:7: "email" must be a non-empty string');
    expect(bad('{"email": "x@y"}')).toBe('users.json:7: "credential" is missing');
    expect(bad('{"credential": 5}')).toBe('users.json:7: "credential" must be a string');
    const long = 'x'.repeat(31) + '-secret-text';
    const message = bad(`{"credential": "${long}"}`);
    expect(message).toBe('users.json:7: "credential" must be a UUID, or a text id of 1 to 30 bytes as Xray accepts (got 43 bytes)');
    expect(bad('"just a string"')).toBe('users.json:7: expected an object {"credential", ...}');
  });

  it('refuses duplicate credentials, also when they differ only in case', () => {
    const text = `[\n{"credential": "${ALICE}"},\n{"credential": "${FRANK}"},\n{"credential": "${ALICE.toUpperCase()}"}\n]`;
    const message = inputError(() => parseXrayUsers(text, 'users.json', 'uuid'));
    expect(message).toBe('users.json:4: duplicate credential (the same as line 2)');
    expect(message).not.toContain(ALICE.slice(0, 8));
    expect(inputError(() => parseXrayUsers('{"credential": "a"}\n\n{"credential": "a"}\n', 'h.jsonl', 'text'))).toBe('h.jsonl:3: duplicate credential (the same as line 1)');
  });

  it('refuses empty files, other JSON and syntax errors, naming the line', () => {
    expect(inputError(() => parseXrayUsers('', 'e.json', 'uuid'))).toBe('e.json: no users in the file');
    expect(inputError(() => parseXrayUsers('[]', 'e.json', 'uuid'))).toBe('e.json: no users in the file');
    expect(inputError(() => parseXrayUsers('credential,email\n', 'u.csv', 'uuid'))).toMatch(/^u\.csv: expected a JSON array of users or JSON Lines/);
    expect(inputError(() => parseXrayUsers(`[\n{"credential": "${ALICE}"},\n{"credential": \n`, 'u.json', 'uuid'))).toMatch(/^u\.json(:\d+:\d+)?: invalid JSON/);
    expect(inputError(() => parseXrayUsers(`{"credential": "${ALICE}"}\n{"credential": "${FRANK}",\n`, 'u.jsonl', 'uuid'))).toMatch(/^u\.jsonl:2(:\d+)?: invalid JSON/);
    expect(inputError(() => parseXrayUsers('[{"credential": ""}]', 'h.json', 'text'))).toBe('h.json:1: "credential" must be a non-empty string');
  });

  it('warns when two users share an email (Xray would merge their stats)', () => {
    const { warnings } = parseXrayUsers(`[\n{"credential": "${ALICE}", "email": "same"},\n{"credential": "${FRANK}", "email": "same"}\n]`, 'u.json', 'uuid');
    expect(warnings).toEqual(['u.json:3: email "same" is also used on line 2: Xray would count both users\' traffic as one']);
  });

  it('names a missing file', async () => {
    await expect(loadXrayUsers(join(dir, 'nope.json'), 'uuid')).rejects.toThrow(/^users file .*nope\.json: no such file$/);
  });
});
