/**
 * The conformance fixtures' JSON Schemas (fixtures/schema/, shipped with the package) applied to a
 * fixture before it is read: a typo such as "allowd" would otherwise skip checks quietly. One
 * error, naming the file, the field and why.
 */
import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { InputError } from './errors.js';

export type FixtureSchema = 'xray-conformance' | 'capnp-conformance';

const compiled = new Map<FixtureSchema, ValidateFunction>();

export function schemaPath(name: FixtureSchema): URL {
  // dist/fixture-schema.js and src/fixture-schema.ts both sit one level below the package root.
  return new URL(`../../fixtures/schema/${name}.schema.json`, import.meta.url);
}

function validator(name: FixtureSchema): ValidateFunction {
  let validate = compiled.get(name);
  if (!validate) {
    const schema = JSON.parse(readFileSync(schemaPath(name), 'utf8')) as object;
    validate = new Ajv({ allErrors: false, strict: false }).compile(schema);
    compiled.set(name, validate);
  }
  return validate;
}

/** Throws `LABEL: FIELD WHY` for the first place the value breaks the schema. */
export function checkFixtureSchema(value: unknown, name: FixtureSchema, label: string): void {
  const validate = validator(name);
  if (validate(value)) return;
  const error = mostSpecific(validate.errors ?? []);
  throw new InputError(`${label}: ${fieldOf(error)} ${whyOf(error)} (fixtures/schema/${name}.schema.json)`);
}

/**
 * A oneOf reports every branch's errors: the deepest one says most, and at one depth a misnamed
 * or missing field says more than "must be string" from the branch that did not apply.
 */
function mostSpecific(errors: ErrorObject[]): ErrorObject {
  const weight = (e: ErrorObject): number => e.instancePath.split('/').length * 10 + (e.keyword === 'additionalProperties' || e.keyword === 'required' ? 2 : e.keyword === 'oneOf' ? 0 : 1);
  return [...errors].sort((a, b) => weight(b) - weight(a))[0]!;
}

function fieldOf(error: ErrorObject): string {
  const parts = error.instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  const extra = error.keyword === 'additionalProperties' ? (error.params as { additionalProperty: string }).additionalProperty : undefined;
  const path = [...parts, ...(extra === undefined ? [] : [extra])].map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p}`)).join('').replace(/^\./, '');
  return path === '' ? 'the fixture' : `"${path}"`;
}

function whyOf(error: ErrorObject): string {
  if (error.keyword === 'additionalProperties') return 'is not a field of this fixture (a typo?)';
  if (error.keyword === 'required') return `needs "${(error.params as { missingProperty: string }).missingProperty}"`;
  return error.message ?? 'is not valid';
}
