/**
 * A suite with one check per way a check can end, against a pretend backend that only keeps a
 * log, so runner and reporter tests need no network.
 */
import type { Suite } from '../../src/conformance/check.js';

export interface ToyBackend {
  /** IDs of the checks that ran, in order. */
  ran: string[];
  /** IDs of the checks whose signal was aborted. */
  aborted: string[];
}

export function toyBackend(): ToyBackend {
  return { ran: [], aborted: [] };
}

export const toySuite: Suite<ToyBackend> = {
  name: 'toy',
  checks: [
    {
      id: 'T01',
      level: 'MUST',
      title: 'The server MUST answer a well-formed request',
      async run(backend, t) {
        backend.ran.push('T01');
        t.evidence({ sent: 'HELLO', received: 'OK' });
      },
    },
    {
      id: 'T02',
      level: 'MUST',
      title: 'An unknown user MUST be rejected with 403',
      async run(backend, t) {
        backend.ran.push('T02');
        return t.fail('the unknown user was accepted', {
          sent: { user: 'nobody', password: '' },
          received: { status: 200, body: '<ok & "welcome">' },
          expected: 'HTTP 403',
        });
      },
    },
    {
      id: 'T03',
      level: 'SHOULD',
      title: 'The server SHOULD close idle connections within 60 s',
      async run(backend, t) {
        backend.ran.push('T03');
        return t.fail('still open after 90 s', { expected: 'closed within 60 s' });
      },
    },
    {
      id: 'T04',
      level: 'MUST',
      title: 'An allowed user MUST be accepted',
      requires: ['fixture.allowed'],
      async run(backend) {
        backend.ran.push('T04');
      },
    },
    {
      id: 'T05',
      level: 'MUST',
      title: 'A malformed request MUST NOT crash the server',
      async run(backend, t) {
        backend.ran.push('T05');
        t.evidence({ sent: new Uint8Array([0xde, 0xad]) });
        throw new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED 127.0.0.1:1') });
      },
    },
    {
      id: 'T06',
      level: 'SHOULD',
      title: 'The server SHOULD answer a ping',
      async run(backend, t) {
        backend.ran.push('T06');
        t.evidence({ sent: 'PING' });
        t.signal.addEventListener('abort', () => backend.aborted.push('T06'));
        await new Promise(() => {});
      },
    },
    {
      id: 'T07',
      level: 'INFO',
      title: 'The server announces its version',
      async run(backend, t) {
        backend.ran.push('T07');
        return t.info('toy/1.0');
      },
    },
  ],
};

/** Runs quickly enough for tests: T06 hangs until this. */
export const TOY_TIMEOUT_MS = 50;
