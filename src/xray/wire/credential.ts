/**
 * VLESS credentials as Xray puts them on the wire (docs/xray-extauth.md §2.8): the client's 16 bytes as a
 * lower-case 8-4-4-4-12 UUID. A client configured with a 1-30 character text id sends
 * UUIDv5(SHA-1 of 16 zero bytes and the text), which a backend keyed on passwords must expect.
 */
import { createHash } from 'node:crypto';
import { InputError } from '../../shared/errors.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(text: string): boolean {
  return UUID.test(text);
}

/** Xray's common/uuid ParseString for a short text id. */
export function uuidFromText(text: string): string {
  const hash = createHash('sha1').update(Buffer.alloc(16)).update(text, 'utf8').digest().subarray(0, 16);
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** What Xray sends for a configured client id: a UUID lower-cased, or a short text id as UUIDv5. */
export function xrayCredential(id: string, flag = '--credential'): { credential: string; note?: string } {
  if (isUuid(id)) return { credential: id.toLowerCase() };
  const length = Buffer.byteLength(id, 'utf8');
  if (length >= 1 && length <= 30) return { credential: uuidFromText(id), note: "the id is not a UUID: Xray sends the UUIDv5 of a text id, as here" };
  throw new InputError(`${flag}: expected a UUID, or a text id of 1 to 30 bytes as Xray accepts, got ${length} bytes`);
}
