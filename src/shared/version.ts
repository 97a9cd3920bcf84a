import { readFileSync } from 'node:fs';

/** authkit's version, from the package.json next to dist/ and src/ alike. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}
