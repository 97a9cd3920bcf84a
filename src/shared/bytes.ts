import { InputError } from './errors.js';

const HEX = /^[0-9a-fA-F]*$/;

/** Parses user-supplied hex (whitespace and a 0x prefix allowed); `label` names the flag in errors. */
export function parseHex(text: string, label: string): Uint8Array {
  const clean = text.trim().replace(/^0x/i, '').replace(/\s+/g, '');
  if (!HEX.test(clean)) {
    const bad = clean.search(/[^0-9a-fA-F]/);
    throw new InputError(`${label}: not hex (character ${JSON.stringify(clean[bad])} at position ${bad})`);
  }
  if (clean.length % 2 !== 0) throw new InputError(`${label}: odd number of hex digits (${clean.length})`);
  return Uint8Array.from(Buffer.from(clean, 'hex'));
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export const utf8 = new TextEncoder();
export const utf8Decoder = new TextDecoder('utf-8', { fatal: false });
