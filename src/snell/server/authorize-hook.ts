/**
 * `--authorize-url`: snell-serve's stand-in for OpenSnell's OnAuthorize hook (docs/snell.md §9
 * step 9), asked before a CONNECT or CONNECT-v2 target is dialled. A non-2xx answer, or no
 * answer, refuses the target; the refusal goes back as an error reply with code 0.
 */
import { request as httpRequest } from 'undici';

export interface AuthorizeQuestion {
  user: string;
  remote: string;
  target: string;
}

/** The hook's answer is awaited this long before the target is refused. */
const AUTHORIZE_TIMEOUT_MS = 5000;

/** Undefined when the hook allows the target, else the message the client's error reply carries. */
export async function askAuthorizeHook(url: string, question: AuthorizeQuestion, log: (line: string) => void): Promise<string | undefined> {
  try {
    const response = await httpRequest(url, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify(question), signal: AbortSignal.timeout(AUTHORIZE_TIMEOUT_MS),
    });
    await response.body.dump();
    return response.statusCode >= 200 && response.statusCode < 300 ? undefined : `not authorized (HTTP ${response.statusCode} from the authorize hook)`;
  } catch (error) {
    // The hook's address and error stay in the server's log; the client learns only the refusal.
    log(`${question.remote} ${question.user} ${question.target} authorize hook failed: ${(error as Error).message}`);
    return 'not authorized (the authorize hook failed)';
  }
}
