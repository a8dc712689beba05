/**
 * The NBD server's TLS configuration (proto.md "TLS support"), checked once
 * when the server is built so a bad key or certificate fails at start-up and
 * never in a client's handshake.
 *
 * Modes, as nbdkit's --tls: 'off' is NOTLS (STARTTLS gets NBD_REP_ERR_UNSUP);
 * 'optional' is SELECTIVETLS with every export available either way;
 * 'require' is FORCEDTLS (every option but STARTTLS and ABORT gets
 * NBD_REP_ERR_TLS_REQD until TLS is up).
 */
import tls from 'node:tls';
import { LunrigError } from '../errors.js';
import { cipherList, TLS_MIN_VERSION } from './tls-policy.js';
import { resolvePskKeys, type PskKeys } from './tls-psk.js';

export type NbdTlsMode = 'off' | 'optional' | 'require';

/** PEM text. */
export type Pem = string | Buffer;

export interface X509ServerCredentials {
  /** The server's certificate (PEM; intermediates may follow it). */
  cert: Pem;
  key: Pem;
  /** CA(s) that client certificates must chain to; required with requestClientCert. */
  ca?: Pem | Pem[];
  /** Ask clients for a certificate (qemu's verify-peer, nbdkit's --tls-verify-peer). Default false. */
  requestClientCert?: boolean;
  /**
   * With requestClientCert: end the handshake of a client whose certificate is
   * missing or does not verify against `ca` (default true). When false such a
   * client gets in as 'anonymous' — only a verified certificate names a peer.
   */
  rejectUnauthorized?: boolean;
}

export interface NbdServerTlsOptions {
  mode: NbdTlsMode;
  x509?: X509ServerCredentials;
  /** identity -> key (hex text as in a PSK file, or bytes); see tls-files.ts loadPskFile. */
  psk?: PskKeys;
}

/** What each connection's upgrade needs; undefined in ResolvedServerOptions when TLS is off. */
export interface ResolvedServerTls {
  mode: 'optional' | 'require';
  /** Options for the per-connection tls.Server, without pskCallback. */
  serverOptions: tls.TlsOptions;
  psk: ReadonlyMap<string, Buffer> | undefined;
  /** A client certificate is asked for and must verify (PSK clients are authenticated by their key). */
  clientCertRequired: boolean;
}

const MODES: readonly NbdTlsMode[] = ['off', 'optional', 'require'];

export function resolveServerTls(o: NbdServerTlsOptions | undefined): ResolvedServerTls | undefined {
  if (!o) return undefined;
  if (!MODES.includes(o.mode)) throw new LunrigError('INVALID_CONFIG', `TLS mode must be one of ${MODES.join(', ')}, got '${String(o.mode)}'`);
  if (o.mode === 'off') return undefined;
  const psk = o.psk ? resolvePskKeys(o.psk) : undefined;
  if (psk && psk.size === 0) throw new LunrigError('INVALID_CONFIG', 'TLS PSK table is empty');
  if (!o.x509 && !psk) throw new LunrigError('INVALID_CONFIG', `TLS mode '${o.mode}' needs X.509 credentials or pre-shared keys`);

  const serverOptions: tls.TlsOptions = { minVersion: TLS_MIN_VERSION, ciphers: cipherList(psk !== undefined), honorCipherOrder: psk !== undefined };
  let clientCertRequired = false;
  const x = o.x509;
  if (x) {
    if (!x.cert || !x.key) throw new LunrigError('INVALID_CONFIG', 'TLS X.509 credentials need both cert and key');
    serverOptions.cert = x.cert;
    serverOptions.key = x.key;
    if (x.ca !== undefined) serverOptions.ca = x.ca;
    if (x.requestClientCert) {
      if (x.ca === undefined) throw new LunrigError('INVALID_CONFIG', 'requestClientCert needs a CA to verify client certificates against');
      serverOptions.requestCert = true;
      clientCertRequired = x.rejectUnauthorized ?? true;
      serverOptions.rejectUnauthorized = clientCertRequired;
    }
  }
  try {
    tls.createSecureContext(serverOptions); // parse now: a bad PEM or a key that does not match fails here
  } catch (err) {
    throw new LunrigError('INVALID_CONFIG', `TLS credentials rejected: ${(err as Error).message}`, undefined, { cause: err });
  }
  return { mode: o.mode, serverOptions, psk, clientCertRequired };
}
