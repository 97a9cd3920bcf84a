/** xray-sim against an HTTPS backend with a certificate made for this test: --cacert and --insecure. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ALLOW, rawPeer, selfSignedCertificate } from '../xray/raw-peer.js';
import { runMain } from './run.js';

const dir = mkdtempSync(join(tmpdir(), 'authkit-xray-tls-'));
const certificate = selfSignedCertificate();
const cacert = join(dir, 'ca.pem');
writeFileSync(cacert, certificate.cert);
const backend = await rawPeer(() => ALLOW, { tls: certificate });
afterAll(() => backend.close());
const sim = (...args: string[]) => runMain(['xray-sim', '--url', backend.url, '--credential', '550e8400-e29b-41d4-a716-446655440000', '--json', ...args]);

describe('xray-sim over https with a private CA', () => {
  it('without --cacert the certificate is not trusted: a network-error deny, as Xray would', async () => {
    const result = await sim();
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ class: 'network-error' });
  });

  it('--cacert FILE trusts the CA: allow', async () => {
    const result = await sim('--cacert', cacert);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ class: 'allow' });
  });

  it('--insecure skips verification, with a note that Xray has no such option', async () => {
    const result = await sim('--insecure');
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/--insecure: the backend's certificate is not verified/);
  });

  it('--cacert under --load too', async () => {
    const result = await runMain(['xray-sim', '--url', backend.url, '--credential', '550e8400-e29b-41d4-a716-446655440000', '--cacert', cacert, '--load', '--rate', '20', '--duration', '1s', '--json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ errors: 0, outcomes: { allow: expect.any(Number) } });
  });

  it('bad input: --cacert on http://, a file that is not PEM, both flags at once', async () => {
    const notPem = join(dir, 'not.pem');
    writeFileSync(notPem, 'hello');
    for (const [args, message] of [
      [['--url', 'http://127.0.0.1:1/', '--cacert', cacert], /--cacert is for an https:\/\/ --url/],
      [['--url', backend.url, '--cacert', notPem], /not a PEM certificate/],
      [['--url', backend.url, '--cacert', cacert, '--insecure'], /exclude each other/],
    ] as const) {
      const result = await runMain(['xray-sim', ...args, '--credential', 'x']);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(message);
    }
  });
});
