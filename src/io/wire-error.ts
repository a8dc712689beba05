/**
 * Carries a LunrigError from a worker to the main thread through a descriptor's
 * error area (a short UTF-8 JSON record), so errors need no postMessage either.
 */
import { ERROR_CODES, LunrigError, type ErrorCode } from '../errors.js';

interface WireError {
  code: ErrorCode;
  message: string;
  errno?: string;
}

/** Writes the error into `area`; returns the status word (1 + code index) and the record length. */
export function encodeError(err: LunrigError, area: Uint8Array): { status: number; length: number } {
  const errno = err.details?.errno;
  const record: WireError = { code: err.code, message: err.message };
  if (typeof errno === 'string') record.errno = errno;
  let bytes = Buffer.from(JSON.stringify(record));
  if (bytes.length > area.length) {
    // Too long for the area: keep the code and errno, shorten the message until it fits.
    record.message = err.message.slice(0, Math.max(0, area.length - 96)) + '…';
    bytes = Buffer.from(JSON.stringify(record));
    if (bytes.length > area.length) bytes = Buffer.from(JSON.stringify({ code: err.code, message: 'error' }));
  }
  area.set(bytes);
  return { status: 1 + ERROR_CODES.indexOf(err.code), length: bytes.length };
}

export function decodeError(status: number, area: Uint8Array, length: number): LunrigError {
  const fallbackCode: ErrorCode = ERROR_CODES[status - 1] ?? 'IO_ERROR';
  try {
    const record = JSON.parse(Buffer.from(area.subarray(0, length)).toString('utf8')) as WireError;
    return new LunrigError(record.code ?? fallbackCode, record.message, record.errno ? { errno: record.errno } : undefined);
  } catch {
    return new LunrigError(fallbackCode, 'I/O request failed');
  }
}
