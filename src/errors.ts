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
