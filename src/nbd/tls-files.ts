/**
 * Credentials from disk, in the layouts qemu (`tls-creds-x509 dir=`,
 * `tls-creds-psk dir=`), nbdkit (`--tls-certificates`, `--tls-psk`) and
 * libnbd (`tls-certificates=`, `tls-psk-file=`) use, so one directory or
 * file serves lunrig and those tools alike.
 *
 *   ca-cert.pem                       CA that signed the peer's certificate
 *   server-cert.pem, server-key.pem   a server's own pair
 *   client-cert.pem, client-key.pem   a client's own pair (optional)
 *   keys.psk                          identity:hexkey lines (qemu's name)
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LunrigError } from '../errors.js';
import { parsePskFile } from './tls-psk.js';

export interface X509Files {
  /** The endpoint's own certificate (chain) and key; absent for a client without one. */
  cert?: Buffer;
  key?: Buffer;
  ca?: Buffer;
}

/** The PSK file qemu looks for in a `tls-creds-psk` directory. */
export const QEMU_PSK_FILE = 'keys.psk';

async function readOptional(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new LunrigError('INVALID_CONFIG', `cannot read ${path}: ${(err as Error).message}`, undefined, { cause: err });
  }
}

/**
 * Read an X.509 directory for `endpoint`. A server needs its pair (the CA is
 * needed only to verify client certificates); a client needs the CA to verify
 * the server, its own pair being optional but all-or-nothing.
 */
export async function loadX509Directory(dir: string, endpoint: 'server'): Promise<X509Files & { cert: Buffer; key: Buffer }>;
export async function loadX509Directory(dir: string, endpoint: 'client'): Promise<X509Files & { ca: Buffer }>;
export async function loadX509Directory(dir: string, endpoint: 'server' | 'client'): Promise<X509Files> {
  const [ca, cert, key] = await Promise.all([
    readOptional(join(dir, 'ca-cert.pem')),
    readOptional(join(dir, `${endpoint}-cert.pem`)),
    readOptional(join(dir, `${endpoint}-key.pem`)),
  ]);
  if ((cert === undefined) !== (key === undefined)) {
    throw new LunrigError('INVALID_CONFIG', `${dir}: ${endpoint}-cert.pem and ${endpoint}-key.pem must both be present or both absent`);
  }
  if (endpoint === 'server' && cert === undefined) throw new LunrigError('INVALID_CONFIG', `${dir}: no server-cert.pem / server-key.pem`);
  if (endpoint === 'client' && ca === undefined) throw new LunrigError('INVALID_CONFIG', `${dir}: no ca-cert.pem to verify the server with`);
  const out: X509Files = {};
  if (cert) out.cert = cert;
  if (key) out.key = key;
  if (ca) out.ca = ca;
  return out;
}

/** Read a PSK file (`identity:hexkey` lines); a directory means its keys.psk, as qemu does. */
export async function loadPskFile(path: string): Promise<Map<string, Buffer>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EISDIR') throw new LunrigError('INVALID_CONFIG', `cannot read PSK file ${path}: ${(err as Error).message}`, undefined, { cause: err });
    return loadPskFile(join(path, QEMU_PSK_FILE));
  }
  const keys = parsePskFile(text, path);
  if (keys.size === 0) throw new LunrigError('INVALID_CONFIG', `${path}: no keys`);
  return keys;
}
