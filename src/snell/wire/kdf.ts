/**
 * Snell's key derivation: Argon2id v0x13, t=3, m=8 KiB, p=1, 32-byte output, with the PSK's
 * raw UTF-8 bytes as the password and the 16-byte stream salt (docs/snell.md §1).
 *
 * Interchangeable backends, because speed decides how many users a trial scan can cover.
 * `auto` takes the fastest this runtime has, by measurement on this project's 2-core machines
 * (`npm run bench` re-measures):
 *   wasm-simd    the reference libargon2 compiled to WebAssembly SIMD (@phi-ag/argon2's wasm),
 *                called through its C API: ~26 µs, close to native libargon2 (~22 µs)
 *   node-rs      @node-rs/argon2, prebuilt Rust: ~47 µs here, the Rust crate has no SIMD
 *   node-crypto  node:crypto argon2Sync (Node >= 24.7, OpenSSL): ~570 µs on Node 24.9, where
 *                each call sets up OpenSSL's KDF afresh, so it is not preferred despite being built in
 *   wasm         hash-wasm: ~700 µs, it instantiates WebAssembly on every call
 * All are synchronous except hash-wasm.
 */
import * as crypto from 'node:crypto';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { InputError } from '../../shared/errors.js';

export const KDF_OUTPUT_BYTES = 32;
export const SALT_BYTES = 16;

export type KdfBackendName = 'node-crypto' | 'wasm-simd' | 'node-rs' | 'wasm';
/** What a user may ask for: a backend, `native` (the best native one) or `auto` (the best one). */
export type KdfChoice = KdfBackendName | 'native' | 'auto';

export interface KdfBackend {
  readonly name: KdfBackendName;
  /** Present on all but hash-wasm; the trial scan's hot loop uses it. */
  readonly deriveSync?: (psk: Uint8Array, salt: Uint8Array) => Uint8Array;
  readonly derive: (psk: Uint8Array, salt: Uint8Array) => Promise<Uint8Array>;
}

type Argon2Sync = (algorithm: string, parameters: Record<string, unknown>) => Buffer;

function loadNodeCrypto(): KdfBackend | undefined {
  const argon2Sync = (crypto as unknown as { argon2Sync?: Argon2Sync }).argon2Sync;
  if (typeof argon2Sync !== 'function') return undefined;
  const deriveSync = (psk: Uint8Array, salt: Uint8Array): Uint8Array =>
    argon2Sync('argon2id', {
      message: psk,
      nonce: salt,
      parallelism: 1,
      tagLength: KDF_OUTPUT_BYTES,
      memory: 8,
      passes: 3,
    });
  return { name: 'node-crypto', deriveSync, derive: async (p, s) => deriveSync(p, s) };
}

interface NodeRsArgon2 {
  hashRawSync(password: Uint8Array, options: Record<string, unknown>): Buffer;
}

function loadNodeRs(): KdfBackend | undefined {
  let lib: NodeRsArgon2;
  try {
    // A prebuilt binary may be missing for this platform; that only means another backend.
    lib = createRequire(import.meta.url)('@node-rs/argon2') as NodeRsArgon2;
  } catch {
    return undefined;
  }
  const deriveSync = (psk: Uint8Array, salt: Uint8Array): Uint8Array =>
    // algorithm 2 = Argon2id, version 1 = 0x13 (const enums in the package's typings).
    lib.hashRawSync(psk, {
      algorithm: 2,
      version: 1,
      timeCost: 3,
      memoryCost: 8,
      parallelism: 1,
      outputLen: KDF_OUTPUT_BYTES,
      salt,
    });
  return { name: 'node-rs', deriveSync, derive: async (p, s) => deriveSync(p, s) };
}

// The few WebAssembly calls used here; this project's TypeScript lib settings do not include its types.
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
};

interface Libargon2Exports {
  memory: { buffer: ArrayBuffer };
  _initialize(): void;
  malloc(size: number): number;
  free(pointer: number): void;
  argon2_hash(t: number, m: number, p: number, pwd: number, pwdLen: number, salt: number, saltLen: number,
    hash: number, hashLen: number, encoded: number, encodedLen: number, type: number, version: number): number;
}

const ARGON2_ID = 2;
const ARGON2_VERSION_13 = 0x13;

let wasmSimdModule: object | undefined;

/** The compiled libargon2 module, once loaded: the scan workers take it instead of reading and compiling it again. */
export function compiledWasmSimd(): object | undefined {
  return wasmSimdModule;
}

/** In a scan worker: use the module the main thread compiled. */
export function adoptCompiledWasmSimd(module: object): void {
  wasmSimdModule ??= module;
}

/**
 * libargon2's own C API from the package's wasm. Its JavaScript wrapper refuses m < 32 KiB,
 * which Snell's m = 8 KiB needs, so the wrapper is not used.
 */
function loadWasmSimd(): KdfBackend | undefined {
  let exports: Libargon2Exports;
  try {
    wasmSimdModule ??= new WebAssembly.Module(readFileSync(createRequire(import.meta.url).resolve('@phi-ag/argon2/argon2.wasm')));
    exports = new WebAssembly.Instance(wasmSimdModule, {}).exports as unknown as Libargon2Exports;
    exports._initialize();
  } catch {
    return undefined;
  }
  let passwordCapacity = 256;
  let password = exports.malloc(passwordCapacity);
  const salt = exports.malloc(SALT_BYTES);
  const output = exports.malloc(KDF_OUTPUT_BYTES);
  const deriveSync = (psk: Uint8Array, saltBytes: Uint8Array): Uint8Array => {
    if (psk.length > passwordCapacity) {
      exports.free(password);
      passwordCapacity = psk.length;
      password = exports.malloc(passwordCapacity);
    }
    // A fresh view each call: the memory's buffer is replaced if the heap ever grows.
    const heap = new Uint8Array(exports.memory.buffer);
    heap.set(psk, password);
    if (saltBytes.length !== SALT_BYTES) throw new RangeError(`salt is ${saltBytes.length} bytes, expected ${SALT_BYTES}`);
    heap.set(saltBytes, salt);
    const status = exports.argon2_hash(3, 8, 1, password, psk.length, salt, SALT_BYTES, output, KDF_OUTPUT_BYTES, 0, 0, ARGON2_ID, ARGON2_VERSION_13);
    if (status !== 0) throw new Error(`libargon2 (wasm) failed with status ${status}`);
    return new Uint8Array(exports.memory.buffer).slice(output, output + KDF_OUTPUT_BYTES);
  };
  return { name: 'wasm-simd', deriveSync, derive: async (p, s) => deriveSync(p, s) };
}

async function loadWasm(): Promise<KdfBackend> {
  const { argon2id } = await import('hash-wasm');
  const derive = async (psk: Uint8Array, salt: Uint8Array): Promise<Uint8Array> =>
    argon2id({
      password: psk,
      salt,
      parallelism: 1,
      iterations: 3,
      memorySize: 8,
      hashLength: KDF_OUTPUT_BYTES,
      outputType: 'binary',
    });
  return { name: 'wasm', derive };
}

const loaded = new Map<KdfBackendName, KdfBackend | undefined>();

async function loadBackend(name: KdfBackendName): Promise<KdfBackend | undefined> {
  if (!loaded.has(name)) {
    const backend =
      name === 'node-crypto' ? loadNodeCrypto() : name === 'wasm-simd' ? loadWasmSimd() : name === 'node-rs' ? loadNodeRs() : await loadWasm();
    loaded.set(name, backend);
  }
  return loaded.get(name);
}

const PREFERENCE: Record<KdfChoice, KdfBackendName[]> = {
  auto: ['wasm-simd', 'node-rs', 'node-crypto', 'wasm'],
  native: ['node-rs', 'node-crypto'],
  'node-crypto': ['node-crypto'],
  'wasm-simd': ['wasm-simd'],
  'node-rs': ['node-rs'],
  wasm: ['wasm'],
};

/** `source` names where the text came from, for the error: the flag or the variable. */
export function parseKdfChoice(text: string | undefined, source = '--kdf'): KdfChoice {
  const value = (text ?? 'auto').trim();
  if (value in PREFERENCE) return value as KdfChoice;
  throw new InputError(`${source}: unknown KDF backend "${value}" (expected ${Object.keys(PREFERENCE).join(', ')})`);
}

/** Picks a backend: the flag wins, then AUTHKIT_KDF, then the fastest one this runtime has. */
export async function selectKdf(choice?: KdfChoice): Promise<KdfBackend> {
  const wanted = choice ?? parseKdfChoice(process.env.AUTHKIT_KDF, 'AUTHKIT_KDF');
  for (const name of PREFERENCE[wanted]) {
    const backend = await loadBackend(name);
    if (backend) return backend;
  }
  throw new InputError(`KDF backend "${wanted}" is not available in this runtime (Node ${process.versions.node})`);
}

/** The backends this runtime can run, fastest first (for benchmarks and tests). */
export async function availableKdfs(): Promise<KdfBackend[]> {
  const found: KdfBackend[] = [];
  for (const name of PREFERENCE.auto) {
    const backend = await loadBackend(name);
    if (backend) found.push(backend);
  }
  return found;
}

export async function deriveSnellKey(backend: KdfBackend, psk: Uint8Array, salt: Uint8Array): Promise<Uint8Array> {
  return backend.deriveSync ? backend.deriveSync(psk, salt) : backend.derive(psk, salt);
}
