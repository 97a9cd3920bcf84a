/** `authkit snell-auth`: which user does a captured first frame belong to, found as OpenSnell would. */
import { Command } from 'commander';
import { parseKdfChoice, selectKdf } from '../snell/wire/kdf.js';
import { ScanPool } from '../snell/scan/pool.js';
import type { AuthFlags, BenchFlags } from './snell-auth-run.js';
import { InputError } from '../shared/errors.js';
import { withModes, type ModeTable } from './modes.js';
import { choiceOption, exitsWith, integerOption, timeParser } from './io.js';


/** Which flag belongs to which input (a flag for another input is exit 2); bytes: --blob or --in. */
export const SNELL_AUTH_MODES: ModeTable = {
  modes: [
    { name: 'replay', switches: ['replay'] },
    { name: 'pcap', switches: ['pcap'] },
    { name: 'captures', switches: ['captures'] },
    { name: 'bytes', switches: [] },
  ],
  flags: {
    ...Object.fromEntries(['--users', '--json', '--kdf', '--max-file-size'].map((f) => [f, 'all'])),
    '--captures': ['captures'], '--pcap': ['pcap'],
    // A recording holds the bytes after obfs, matched as snell-serve matches them (no legacy diagnosis).
    ...Object.fromEntries(['--obfs', '--no-legacy'].map((f) => [f, ['pcap', 'captures', 'bytes']])),
    '--replay': ['replay'],
    '--port': ['pcap'],
    ...Object.fromEntries(['--blob', '--in', '--source-ip'].map((f) => [f, ['bytes']])),
  },
};

export function snellAuthCommand(): Command {
  const command = new Command('snell-auth')
    .description('find which user a captured Snell first frame belongs to, by trial decryption as OpenSnell does')
    .enablePositionalOptions()
    .option('--users <file>', 'users file (required): JSON array, JSON Lines, CSV (name,psk) or name:psk lines')
    .option('--blob <hex>', 'the captured client bytes, in hex')
    .option('--in <file>', 'the captured client bytes, raw')
    .option('--captures <file>', 'JSON Lines {"blob": HEX, "sourceIp"?: IP}, run in order through one IP cache')
    .option('--pcap <file>', 'a classic libpcap capture: the first client bytes of each TCP stream to --port')
    .option('--port <port>', 'server port of the streams to take from --pcap', integerOption(0, 65535))
    .option('--source-ip <ip>', 'client address of --blob or --in (fills the IP cache)')
    .option('--obfs <mode>', 'auto, off, http or tls: strip a simple-obfs wrapper first', choiceOption(['auto', 'off', 'http', 'tls'] as const), 'auto')
    .option('--no-legacy', 'do not look for legacy v1-v3 streams on a miss')
    .option('--json', 'one JSON line per capture on stdout')
    .option('--kdf <backend>', 'Argon2id backend: auto, native, node-crypto, wasm-simd, node-rs, wasm (or AUTHKIT_KDF)')
    .option('--replay <file>', 'a snell-serve --record recording: does every connection still map to the same user under --users? Lists those that change (exit 1 on a change)')
    .option('--max-file-size <size>', 'refuse a users file, capture or pcap larger than this (default 1G; e.g. 4G, 512M)')
    .addHelpText('after', '\nExamples:\n  authkit snell-auth --users users.txt --blob 6c7e88d6...\n  authkit snell-auth --users users.txt --pcap node.pcap --port 8443 --json\n  authkit snell-auth --users users-new.txt --replay connections.jsonl\n  authkit snell-auth bench --users 1000')
    .action(exitsWith(snellAuth));
  withModes(command, SNELL_AUTH_MODES);
  command
    .command('bench')
    .description('measure trial authentication per KDF backend on synthetic users')
    .option('--users <n>', 'number of synthetic users', integerOption(1, 10_000_000), 1000)
    .option('--seconds <duration>', 'time per measurement: a duration like 500ms, or seconds', timeParser('s', 0.1, 600), 2)
    .option('--json', 'print the figures as JSON')
    .option('--kdf <backend>', 'measure only this backend')
    .addHelpText('after', '\nExample:\n  authkit snell-auth bench --users 1000 --seconds 3')
    .action(exitsWith(snellAuthBench));
  return command;
}


/**
 * The scan pool starts first, before the rest of the command loads: its worker boots meanwhile
 * (bin/authkit.js started it before the command line was parsed), and start-up to the first
 * trial is part of what snell-auth is measured on. This thread is one of the scanners: it has
 * nothing else to do while a capture is scanned, and that is one worker fewer to boot.
 */
async function snellAuth(flags: AuthFlags): Promise<number> {
  // Checked here rather than by commander, which would also demand it of `snell-auth bench`.
  if (flags.users === undefined) throw new InputError('--users FILE is required');
  const kdf = await selectKdf(flags.kdf === undefined ? undefined : parseKdfChoice(flags.kdf));
  const pool = new ScanPool(kdf.name, { inThread: kdf });
  let run: typeof import('./snell-auth-run.js');
  try {
    run = await import('./snell-auth-run.js');
  } catch (error) {
    await pool.close();
    throw error;
  }
  return run.runSnellAuth({ ...flags, users: flags.users }, kdf, pool);
}

async function snellAuthBench(flags: BenchFlags): Promise<number> {
  return (await import('./snell-auth-bench.js')).runSnellAuthBench(flags);
}
