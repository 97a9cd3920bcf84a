import type { Dialect } from '../dialect.js';

/**
 * The snake_case dialect of the archived cnap-core source (`http.go@2819554`, docs/xray-extauth.md §2.3 [S]):
 * the secret as a bearer token, `protocol` only once the VLESS header is decoded (so absent on
 * authorization and connect), omitempty on the optional fields, no ports, no timestamp.
 */
export const src: Dialect = {
  name: 'src',
  summary: 'ExtAuth as the archived cnap-core code sends it (snake_case, bearer secret)',
  events: ['authorization', 'connect', 'heartbeat', 'disconnect'],
  body: [
    { key: 'type', fact: 'type', format: 'text' },
    { key: 'protocol', fact: 'protocol', format: 'text', omitOn: ['authorization', 'connect'], omitEmpty: true },
    { key: 'connection_id', fact: 'connectionId', format: 'text' },
    { key: 'inbound_tag', fact: 'inboundTag', format: 'text', omitEmpty: true },
    { key: 'credential', fact: 'credential', format: 'text' },
    { key: 'ip', fact: 'sourceIp', format: 'ip', omitEmpty: true },
    { key: 'local_ip', fact: 'localIp', format: 'ip', omitEmpty: true },
  ],
  secret: 'bearer',
  cache: true,
  customHeaders: false,
  timeout: { default: 5, fixed: false },
  kickOnDenyDefault: false,
  reply: 'extauth-user',
};
