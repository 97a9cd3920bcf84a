/**
 * Errors a user can act on. The CLI maps them to one line on stderr and an exit code;
 * anything else is a bug and is only shown in full with AUTHKIT_DEBUG=1.
 */

/** Bad input from the user (flags, files, hex): exit code 2. */
export class InputError extends Error {
  override readonly name = 'InputError';
}

/**
 * Bytes that do not parse as the named structure. `offset` is where in the input the
 * problem was found, so a user can line it up with a hex dump.
 */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
  constructor(
    readonly what: string,
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`${what}: ${reason} at offset ${offset}`);
  }
}

/** A file-system error as a few words for a one-line message. */
export function describeFsError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  return code ?? String(error);
}

/** `--flag: cannot write PATH: CODE`, for an output file that cannot be opened or written. */
export function cannotWrite(flag: string, path: string, error: unknown): InputError {
  return new InputError(`${flag}: cannot write ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
}
