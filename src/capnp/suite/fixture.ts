/**
 * What a service author tells the Proksi external_auth suite about their service: requests that
 * must pass, be blocked, or redirect, each a partial client request (completed as Proksi would
 * build it, docs/proksi-external-auth.md §4). Errors name the file, the list and the field.
 */
import { InputError } from '../../shared/errors.js';
import { clientRequest, type ClientRequest, type ClientRequestSpec } from '../model.js';

export interface CapnpFixture {
  pass: ClientRequest[];
  block: ClientRequest[];
  redirect: ClientRequest[];
}

/** A fixture: requests (partial client requests) that must pass, be blocked, or redirect. */
export function parseCapnpFixture(value: unknown, label: string): CapnpFixture {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new InputError(`${label}: the fixture must be a JSON object`);
  const root = value as Record<string, unknown>;
  const list = (key: keyof CapnpFixture): ClientRequest[] => {
    const items = root[key] ?? [];
    if (!Array.isArray(items)) throw new InputError(`${label}: "${key}" must be an array of requests`);
    return items.map((item, i) => {
      const where = `${label}: "${key}"[${i}]`;
      if (typeof item !== 'object' || item === null) throw new InputError(`${where} must be an object`);
      const r = item as Record<string, unknown>;
      for (const field of ['method', 'host', 'path', 'query', 'clientIp'] as const) {
        if (r[field] !== undefined && typeof r[field] !== 'string') throw new InputError(`${where}.${field} must be a string`);
      }
      for (const field of ['http2', 'noHostHeader'] as const) {
        if (r[field] !== undefined && typeof r[field] !== 'boolean') throw new InputError(`${where}.${field} must be true or false`);
      }
      const headers = r.headers ?? [];
      if (!Array.isArray(headers) || !headers.every((h) => Array.isArray(h) && h.length === 2 && h.every((x) => typeof x === 'string'))) {
        throw new InputError(`${where}.headers must be a list of [name, value] pairs`);
      }
      return clientRequest({ ...(r as ClientRequestSpec), headers: headers as [string, string][] });
    });
  };
  return { pass: list('pass'), block: list('block'), redirect: list('redirect') };
}

/** What the fixture offers the checks' `requires`: each of its lists that is not empty. */
export function capnpCapabilities(fixture: CapnpFixture | undefined): Set<string> {
  const has = new Set<string>();
  if (fixture?.pass.length) has.add('fixture.pass');
  if (fixture?.block.length) has.add('fixture.block');
  if (fixture?.redirect.length) has.add('fixture.redirect');
  return has;
}
