// The floor for any relay written on Node: a bare pipe both ways, reading nothing, recording
// nothing. tap-bench.js measures it beside xray-tap, so the tap's cost is seen above this floor.
// Usage: node pipe-relay.js UPSTREAM_PORT; prints "relaying 127.0.0.1:PORT" once listening.
import net from 'node:net';

const upstreamPort = Number(process.argv[2]);
const server = net.createServer({ noDelay: true, allowHalfOpen: true }, (client) => {
  const upstream = net.connect({ host: '127.0.0.1', port: upstreamPort, noDelay: true, allowHalfOpen: true });
  client.pipe(upstream);
  upstream.pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
});
server.listen(0, '127.0.0.1', () => console.log(`relaying 127.0.0.1:${server.address().port}`));
process.on('SIGTERM', () => process.exit(0));
