/**
 * Where snell-serve lets tunnels go: `--echo` (an in-process echo), and `--allow-target`
 * entries (HOST:PORT, or a CIDR with an optional :PORT). Anything else gets an error reply, so
 * the server is never an open proxy by accident.
 */
import { BlockList, isIP } from 'node:net';
import { InputError } from '../../shared/errors.js';

export interface TargetPolicy {
  echo: boolean;
  allows(host: string, port: number): boolean;
  describe(): string;
}

interface Entry {
  text: string;
  host?: string;
  list?: BlockList;
  port?: number;
}

export function parseTargetPolicy(entries: readonly string[], echo: boolean): TargetPolicy {
  const parsed: Entry[] = entries.map((text) => {
    const cidr = /^(.+)\/(\d{1,3})(?::(\d{1,5}))?$/.exec(text.replace(/^\[(.+)\](.*)$/, '$1$2'));
    if (cidr) {
      const [, address, bits, port] = cidr;
      const family = isIP(address!);
      if (family === 0 || Number(bits) > (family === 4 ? 32 : 128)) throw new InputError(`--allow-target ${text}: not a CIDR (e.g. 10.0.0.0/8 or 10.0.0.0/8:443)`);
      const list = new BlockList();
      list.addSubnet(address!, Number(bits), family === 4 ? 'ipv4' : 'ipv6');
      return { text, list, port: port === undefined ? undefined : checkPort(port, text) };
    }
    const hostPort = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(text);
    if (!hostPort) throw new InputError(`--allow-target ${text}: expected HOST:PORT or a CIDR like 10.0.0.0/8[:PORT]`);
    return { text, host: hostPort[1]!.replace(/^\[|\]$/g, '').toLowerCase(), port: checkPort(hostPort[2]!, text) };
  });
  return {
    echo,
    allows(host, port) {
      // Port 0 is no destination (and throws in a UDP send).
      if (!(port >= 1 && port <= 65535)) return false;
      const name = host.toLowerCase();
      const family = isIP(name);
      return parsed.some((entry) => {
        if (entry.port !== undefined && entry.port !== port) return false;
        if (entry.list) return family !== 0 && entry.list.check(name, family === 4 ? 'ipv4' : 'ipv6');
        return entry.host === name;
      });
    },
    describe() {
      return [...(echo ? ['echo'] : []), ...parsed.map((e) => e.text)].join(', ') || 'nothing (every CONNECT gets an error reply)';
    },
  };
}

function checkPort(text: string, entry: string): number {
  const port = Number(text);
  if (!(port >= 1 && port <= 65535)) throw new InputError(`--allow-target ${entry}: port ${text} outside 1..65535`);
  return port;
}
