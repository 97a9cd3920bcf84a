/**
 * What a command can start before the command line is parsed, called by bin/authkit.js ahead of
 * everything else. snell-auth's scan worker needs ~60 ms of a core to boot, and snell-auth is
 * measured from its spawn to its first trial: booted now, it is ready by the time the users file
 * is. This module imports next to nothing, so it costs nothing to the other commands.
 */
import { defaultScanners, prestartScanWorkers } from '../snell/scan/workers.js';

export function prestart(argv: readonly string[]): void {
  const [command, sub] = argv.slice(2);
  if (command !== 'snell-auth' || sub === 'bench' || argv.includes('--help') || argv.includes('-h')) return;
  // snell-auth's pool scans in its own thread too (snell-auth.ts): one worker fewer than scanners.
  prestartScanWorkers(defaultScanners() - 1);
}
