import { InputError } from './errors.js';

/**
 * JSON.parse for user files. The error names the file, line and column where V8 gives a
 * position, but never V8's message itself: it quotes the text around the error, which in a
 * users file may be a PSK.
 * `line` is the line `text` starts on, for JSON Lines.
 */
export function parseJsonText(text: string, label: string, line?: number): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const message = (error as Error).message;
    const position = errorPosition(message, text);
    const problem = /end of JSON input/i.test(message) ? 'it ends too early' : 'syntax error';
    if (position === undefined) throw new InputError(`${label}${line === undefined ? '' : `:${line}`}: invalid JSON (${problem})`);
    const before = text.slice(0, position);
    const lineInText = before.split('\n').length;
    const column = before.length - before.lastIndexOf('\n');
    throw new InputError(`${label}:${(line ?? 1) + lineInText - 1}:${column}: invalid JSON (${problem})`);
  }
}

/**
 * Where V8 found the error: "at position N", or for an unexpected token the quoted context
 * around it ("...context"...), which is located in the text (the token sits 10 characters into
 * a context that starts with an ellipsis).
 */
function errorPosition(message: string, text: string): number | undefined {
  const position = /position (\d+)/.exec(message);
  if (position) return Number(position[1]);
  const token = /Unexpected token '([^']*)', (\.\.\.)?"([\s\S]*?)"(\.\.\.)? is not valid JSON/.exec(message);
  if (!token) return undefined;
  const [, char = '', ellipsis, context = ''] = token;
  const at = text.indexOf(context);
  if (at < 0) return undefined;
  return at + (ellipsis ? 10 : Math.max(0, context.indexOf(char)));
}

/**
 * The line on which each element of a top-level JSON array starts, so that an error about entry
 * i can name its line: a small scanner aware of strings and nesting.
 */
export function arrayElementLines(text: string): number[] {
  const starts: number[] = [];
  let depth = 0;
  let line = 1;
  let inString = false;
  let expectElement = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '\n') line++;
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') continue;
    if (depth === 1 && expectElement) {
      starts.push(line);
      expectElement = false;
    }
    if (c === '"') inString = true;
    else if (c === '[' || c === '{') {
      depth++;
      if (depth === 1) expectElement = true;
    } else if (c === ']' || c === '}') depth--;
    else if (c === ',' && depth === 1) expectElement = true;
  }
  return starts;
}
