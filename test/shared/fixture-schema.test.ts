/** The conformance fixtures' JSON Schemas: the shipped fixtures pass, mistakes are one line naming the field. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkFixtureSchema } from '../../src/shared/fixture-schema.js';
import { loadFixture } from '../../src/xray/suite/fixture.js';

const read = (path: string): unknown => JSON.parse(readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8'));

describe('fixture schemas', () => {
  it('every shipped fixture validates', () => {
    for (const path of ['fixtures/xray/conformance.json', 'fixtures/xray/hysteria-conformance.json']) expect(() => checkFixtureSchema(read(path), 'xray-conformance', path)).not.toThrow();
    expect(() => checkFixtureSchema(read('fixtures/capnp-serve/conformance.json'), 'capnp-conformance', 'c')).not.toThrow();
  });

  it.each([
    [{ allowd: ['x'] }, '"allowd" is not a field of this fixture (a typo?)'],
    [{ denied: [{ credential: 'a', whyy: 'x' }] }, '"denied[0].whyy" is not a field of this fixture'],
    [{ sessionLimit: { credential: 'x' } }, '"sessionLimit" needs "maxIps"'],
    [{ revoke: { hook: { url: 1 } } }, '"revoke.hook.url" must be string'],
  ])('xray: %j', (value, message) => {
    expect(() => checkFixtureSchema(value, 'xray-conformance', 'f.json')).toThrow(`f.json: ${message}`);
  });

  it('capnp: a request field that does not exist', () => {
    expect(() => checkFixtureSchema({ pass: [{ pth: '/' }] }, 'capnp-conformance', 'c.json')).toThrow('c.json: "pass[0].pth" is not a field of this fixture');
  });

  it('--fixture files are checked against the schema when loaded', () => {
    expect(() => loadFixture(new URL('../../package.json', import.meta.url).pathname, true)).toThrow(/package\.json: "name" is not a field of this fixture/);
  });
});
