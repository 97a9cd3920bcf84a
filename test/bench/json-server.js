// The stand-in backend every load generator is measured against (docs/load-engine.md §3): one
// node:http process, keep-alive, reads the body, JSON.parses it and answers an ExtAuth allow.
// Prints its port (or socket path) on stdout once listening.
import http from 'node:http';

const [where = '0'] = process.argv.slice(2);
const server = http.createServer((request, response) => {
  let body = '';
  request.setEncoding('utf8');
  request.on('data', (chunk) => (body += chunk));
  request.on('end', () => {
    let email = 'a@b';
    try {
      email = JSON.parse(body).email ?? email;
    } catch {
      // A body that is not JSON still gets an answer: the stand-in measures clients, not parsing.
    }
    const reply = JSON.stringify({ user: { email, level: 0 } });
    response.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(reply) });
    response.end(reply);
  });
});
server.keepAliveTimeout = 60_000;
if (/^\d+$/.test(where)) server.listen(Number(where), '127.0.0.1', () => console.log(server.address().port));
else server.listen(where, () => console.log(where));
process.on('SIGTERM', () => process.exit(0));
