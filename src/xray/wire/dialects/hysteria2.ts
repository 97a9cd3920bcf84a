import type { Dialect } from '../dialect.js';

/**
 * Hysteria 2's HTTP auth (docs/xray-extauth.md §6 [S]): one POST per client connection, {addr, auth, tx} ->
 * {ok, id}, a hard-coded 10 s timeout, no secret and no custom headers.
 */
export const hysteria2: Dialect = {
  name: 'hysteria2',
  summary: 'Hysteria 2 HTTP auth ({addr, auth, tx} -> {ok, id})',
  events: ['authorization'],
  body: [
    { key: 'addr', fact: 'address', format: 'address' },
    { key: 'auth', fact: 'credential', format: 'text' },
    { key: 'tx', fact: 'tx', format: 'uint64' },
  ],
  secret: 'none',
  cache: false,
  customHeaders: false,
  timeout: { default: 10, fixed: true },
  kickOnDenyDefault: false,
  reply: 'hysteria-ok',
};
