/**
 * Serves a load run's live metrics on `GET /metrics` (Prometheus' text format, 0.0.4); every
 * other path is 404. It listens from before the run until the command returns: close() drops
 * the scrapers' keep-alive connections, so nothing is left to hold the process open.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describeListenAt, listenOn } from '../shared/listen.js';
import { METRICS_CONTENT_TYPE } from './metrics.js';

export interface MetricsServer {
  /** `http://host:port/metrics`, with the port the system chose for port 0. */
  readonly url: string;
  close(): Promise<void>;
}

/** Listens on `at`; a port in use or an address not of this host is an InputError (one line, exit 2). */
export async function startMetricsServer(render: () => string, at: { host: string; port: number }): Promise<MetricsServer> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: the metrics are at /metrics\n');
      return;
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('GET /metrics\n');
      return;
    }
    const body = render();
    response.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    response.end(request.method === 'HEAD' ? undefined : body);
  });
  await listenOn(server, at);
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${describeListenAt({ host: at.host, port })}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
