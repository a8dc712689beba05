/**
 * Pre-shared keys as nbdkit (`--tls-psk`), qemu (`tls-creds-psk`, keys.psk)
 * and libnbd (`tls-psk-file`) keep them: one `identity:hexkey` line each, the
 * format gnutls' psktool writes. Identities are what LUN masking will match on.
 */
import { LunrigError } from '../errors.js';

/** OpenSSL's limits are larger; these keep identities and keys portable to gnutls peers. */
export const PSK_MAX_IDENTITY_BYTES = 128;
export const PSK_MAX_KEY_BYTES = 256;
/** Shorter keys are guessable offline from one recorded handshake. */
export const PSK_MIN_KEY_BYTES = 16;

/** identity -> key: hex text (as in a PSK file) or raw bytes. */
export type PskKeys = ReadonlyMap<string, string | Uint8Array> | Readonly<Record<string, string | Uint8Array>>;

/** An identity a PSK file can hold: non-empty, no ':' (the separator) or line breaks, at most 128 bytes. */
export function checkPskIdentity(identity: string, where = 'PSK identity'): string {
  if (identity.length === 0) throw new LunrigError('INVALID_CONFIG', `${where}: empty identity`);
  if (/[:\r\n\0]/.test(identity)) throw new LunrigError('INVALID_CONFIG', `${where}: identity '${identity}' contains ':', NUL or a line break`);
  if (Buffer.byteLength(identity, 'utf8') > PSK_MAX_IDENTITY_BYTES) throw new LunrigError('INVALID_CONFIG', `${where}: identity longer than ${PSK_MAX_IDENTITY_BYTES} bytes`);
  return identity;
}

/** A key given as hex (psktool's form) or bytes, checked for length. */
export function pskKeyBytes(key: string | Uint8Array, where = 'PSK key'): Buffer {
  let bytes: Buffer;
  if (typeof key === 'string') {
    if (!/^(?:[0-9a-fA-F]{2})+$/.test(key)) throw new LunrigError('INVALID_CONFIG', `${where}: key is not an even number of hex digits`);
    bytes = Buffer.from(key, 'hex');
  } else bytes = Buffer.from(key);
  if (bytes.length < PSK_MIN_KEY_BYTES || bytes.length > PSK_MAX_KEY_BYTES) {
    throw new LunrigError('INVALID_CONFIG', `${where}: key of ${bytes.length} bytes (must be ${PSK_MIN_KEY_BYTES}..${PSK_MAX_KEY_BYTES})`);
  }
  return bytes;
}

/** Check and decode a key table (Map or record). */
export function resolvePskKeys(keys: PskKeys): Map<string, Buffer> {
  const entries = keys instanceof Map ? [...(keys as ReadonlyMap<string, string | Uint8Array>).entries()] : Object.entries(keys);
  const out = new Map<string, Buffer>();
  for (const [identity, key] of entries) {
    checkPskIdentity(identity);
    out.set(identity, pskKeyBytes(key, `PSK key of '${identity}'`));
  }
  return out;
}

/**
 * Parse PSK file text. Lines are `identity:hexkey`; blank lines and `#`
 * comments are skipped (gnutls writes neither); a repeated identity is an
 * error rather than a silent override.
 */
export function parsePskFile(text: string, source = 'PSK file'): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) continue;
    const where = `${source} line ${i + 1}`;
    const colon = line.indexOf(':');
    if (colon < 0) throw new LunrigError('INVALID_CONFIG', `${where}: expected identity:hexkey`);
    const identity = checkPskIdentity(line.slice(0, colon), where);
    if (out.has(identity)) throw new LunrigError('INVALID_CONFIG', `${where}: identity '${identity}' appears twice`);
    out.set(identity, pskKeyBytes(line.slice(colon + 1), where));
  }
  return out;
}

/** One `identity:hexkey` line, as psktool writes it. */
export function formatPskLine(identity: string, key: Uint8Array): string {
  return `${checkPskIdentity(identity)}:${Buffer.from(key).toString('hex')}\n`;
}
