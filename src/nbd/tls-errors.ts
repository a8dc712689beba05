/**
 * An OpenSSL error in a line: its reason ("peer did not return a
 * certificate") and code, not the multi-line "error:0A0000C7:SSL routines:..." text.
 */
export function tlsErrorText(err: Error): string {
  const e = err as Error & { reason?: unknown; code?: unknown };
  const text = typeof e.reason === 'string' && e.reason !== '' ? e.reason : err.message.trim();
  return typeof e.code === 'string' && e.code.startsWith('ERR_SSL_') ? `${text} (${e.code})` : text;
}
