/**
 * How the CLI fails: one line on stderr, `lunrig: CODE: message`, and an exit
 * code scripts can branch on.
 */
import { isLunrigError } from '../errors.js';

export const EXIT_OK = 0;
/** The server or the array refused, or could not be reached. */
export const EXIT_FAILED = 1;
/** The command line itself is wrong. */
export const EXIT_USAGE = 2;

export function failureLine(err: unknown): string {
  if (isLunrigError(err)) return `lunrig: ${err.code}: ${oneLine(err.message)}`;
  return `lunrig: INTERNAL: ${oneLine(err instanceof Error ? err.message : String(err))}`;
}

export function usageLine(message: string): string {
  return `lunrig: USAGE: ${oneLine(message.replace(/^error: /, ''))} (see lunrig --help)`;
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}
