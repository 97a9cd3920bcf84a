import type { Dialect } from '../dialect.js';

/**
 * The camelCase dialect of the ExtAuth discussion and wiki (docs/xray-extauth.md §2.3 [W]): custom headers, port
 * and timestamp fields, and email/level hints. Its author has since called the wiki out of date,
 * but backend authors read it, so it is the default.
 */
export const wiki: Dialect = {
  name: 'wiki',
  summary: 'ExtAuth as the wiki/discussion describes it (camelCase, headers map)',
  events: ['authorization', 'connect', 'heartbeat', 'disconnect'],
  body: [
    { key: 'type', fact: 'type', format: 'text' },
    { key: 'credential', fact: 'credential', format: 'text' },
    { key: 'connection', fact: 'connectionId', format: 'text' },
    { key: 'email', fact: 'email', format: 'text' },
    { key: 'level', fact: 'level', format: 'number' },
    { key: 'protocol', fact: 'protocol', format: 'text' },
    { key: 'inboundTag', fact: 'inboundTag', format: 'text' },
    { key: 'sourceIP', fact: 'sourceIp', format: 'ip' },
    { key: 'sourcePort', fact: 'sourcePort', format: 'number' },
    { key: 'localIP', fact: 'localIp', format: 'ip' },
    { key: 'localPort', fact: 'localPort', format: 'number' },
    { key: 'timestamp', fact: 'timestamp', format: 'number' },
  ],
  secret: 'none',
  cache: true,
  customHeaders: true,
  timeout: { default: 5, fixed: false },
  kickOnDenyDefault: true,
  reply: 'extauth-user',
};
