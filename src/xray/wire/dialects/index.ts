import { InputError } from '../../../shared/errors.js';
import type { Dialect } from '../dialect.js';
import { hysteria2 } from './hysteria2.js';
import { src } from './src.js';
import { wiki } from './wiki.js';

export const DIALECTS: Record<string, Dialect> = { wiki, src, hysteria2 };

export function dialectNamed(name: string): Dialect {
  const dialect = DIALECTS[name];
  if (!dialect) throw new InputError(`--dialect: unknown dialect "${name}" (expected ${Object.keys(DIALECTS).join(', ')})`);
  return dialect;
}
