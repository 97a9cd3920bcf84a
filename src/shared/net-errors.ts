/** What a failed connection means, in one phrase a user can act on. */
export function describeSocketError(error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case 'ECONNREFUSED':
      return 'connection refused (nothing listens there)';
    case 'ENOENT':
      return 'no socket at that path';
    case 'ECONNRESET':
      return 'the peer reset the connection';
    case 'ENOTFOUND':
      return 'the host name does not resolve';
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `unreachable (${error.code})`;
    default:
      return error.code ?? error.message;
  }
}
