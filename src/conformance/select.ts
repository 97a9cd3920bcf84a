/** Which checks a run covers: --list and --only, validated against the suite. */
import { InputError } from '../shared/errors.js';
import type { Check, CheckInfo, Suite } from './check.js';

/** For --list: free, it runs nothing. */
export function listChecks<C>(suite: Suite<C>): CheckInfo[] {
  indexById(suite);
  return suite.checks.map(infoOf);
}

/** "X01,X07" or "x01 x07" to the suite's IDs; an ID the suite lacks is the user's mistake. */
export function parseOnly<C>(text: string, suite: Suite<C>): string[] {
  return resolveIds(text.split(/[\s,]+/).filter((id) => id !== ''), suite);
}

/** The IDs of RunOptions.only or --only, in the suite's spelling, once each. */
export function resolveIds<C>(ids: readonly string[], suite: Suite<C>): string[] {
  if (ids.length === 0) throw new InputError('--only needs at least one check ID, e.g. --only X01,X07');
  const byId = indexById(suite);
  const unknown = ids.filter((id) => !byId.has(id.toUpperCase()));
  if (unknown.length > 0) {
    const noun = unknown.length === 1 ? 'check' : 'checks';
    throw new InputError(`--only: ${suite.name} has no ${noun} ${unknown.join(', ')} (--list shows its checks)`);
  }
  return [...new Set(ids.map((id) => byId.get(id.toUpperCase())!))];
}

/** IDs are matched without regard to case, so two that differ only in case are a suite bug. */
export function indexById<C>(suite: Suite<C>): Map<string, string> {
  const byId = new Map<string, string>();
  for (const { id } of suite.checks) {
    if (byId.has(id.toUpperCase())) throw new Error(`suite ${suite.name} has two checks with ID ${id}`);
    byId.set(id.toUpperCase(), id);
  }
  return byId;
}

export function infoOf<C>(check: Check<C>): CheckInfo {
  const { id, level, title, requires } = check;
  return requires === undefined ? { id, level, title } : { id, level, title, requires: [...requires] };
}
