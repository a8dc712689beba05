/**
 * The client half of STARTTLS (proto.md "Client-side requirements"): ask
 * with NBD_OPT_STARTTLS as the first option, and on ACK upgrade the socket
 * with tls.connect({ socket }) and negotiate afresh over TLS. 'require'
 * refuses to go on in plaintext (the downgrade defence the spec recommends);
 * 'optional' continues in plaintext when the server declines.
 */
import type net from 'node:net';
import tls from 'node:tls';
import { LunrigError } from '../errors.js';
import { requestStartTls } from './client-handshake.js';
import type { Pem } from './tls-options.js';
import { cipherList, TLS_MIN_VERSION } from './tls-policy.js';
import { tlsErrorText } from './tls-errors.js';
import { checkPskIdentity, pskKeyBytes } from './tls-psk.js';
import { SocketReader } from './socket-reader.js';
import { NbdWireError } from './wire.js';

export interface NbdClientTlsOptions {
  /** 'require': fail unless TLS is up. 'optional': use TLS if the server agrees (open to downgrade). */
  mode: 'require' | 'optional';
  /** Verify the server's certificate against `ca`; present `cert`/`key` when the server asks for one. */
  x509?: {
    ca: Pem | Pem[];
    cert?: Pem;
    key?: Pem;
    /** Name the server certificate must carry (default: the TCP host, or 'localhost' for a unix socket). */
    servername?: string;
  };
  /** Authenticate both ends with a pre-shared key (hex text as in a PSK file, or bytes). */
  psk?: { identity: string; key: string | Uint8Array };
}

export interface ClientTlsInfo {
  protocol: string;
  cipher: string;
  /** How the server proved itself. */
  authenticatedBy: 'x509' | 'psk';
}

/** Refuse contradictory or empty TLS options before connecting. */
export function checkClientTlsOptions(o: NbdClientTlsOptions): void {
  if (o.mode !== 'require' && o.mode !== 'optional') throw new LunrigError('INVALID_ARGUMENT', `TLS mode must be 'require' or 'optional', got '${String(o.mode)}'`);
  if (!o.x509 === !o.psk) throw new LunrigError('INVALID_ARGUMENT', 'TLS needs exactly one of x509 or psk credentials');
  if (o.x509 && (o.x509.cert === undefined) !== (o.x509.key === undefined)) throw new LunrigError('INVALID_ARGUMENT', 'TLS client certificate needs both cert and key');
  if (o.psk) {
    try {
      checkPskIdentity(o.psk.identity);
      pskKeyBytes(o.psk.key);
    } catch (err) {
      throw new LunrigError('INVALID_ARGUMENT', (err as Error).message, undefined, { cause: err });
    }
  }
}

export interface UpgradedSession {
  socket: tls.TLSSocket;
  reader: SocketReader;
  info: ClientTlsInfo;
}

/**
 * Send NBD_OPT_STARTTLS on a fresh session and, on ACK, run the TLS handshake.
 * Returns undefined when the server declined and `mode` is 'optional'.
 */
export async function startClientTls(
  raw: net.Socket,
  reader: SocketReader,
  o: NbdClientTlsOptions,
  host: string | undefined,
): Promise<UpgradedSession | undefined> {
  const refusal = await requestStartTls(reader, (b) => void raw.write(b));
  if (refusal !== undefined) {
    if (o.mode === 'optional') return undefined;
    throw new LunrigError('NOT_SUPPORTED', `NBD server refused STARTTLS (${refusal}) and TLS is required`, { tls: true });
  }
  reader.detach();
  // Nothing may follow the ACK in plaintext: such bytes would be spliced into the TLS session.
  if (reader.queue.length > 0) throw new NbdWireError('server sent data after acknowledging NBD_OPT_STARTTLS');
  raw.on('error', () => undefined); // errors surface on the TLS socket from here on
  const socket = await handshake(raw, o, host);
  const info: ClientTlsInfo = {
    protocol: socket.getProtocol() ?? 'unknown',
    cipher: socket.getCipher()?.name ?? 'unknown',
    authenticatedBy: o.psk ? 'psk' : 'x509',
  };
  return { socket, reader: new SocketReader(socket), info };
}

function handshake(raw: net.Socket, o: NbdClientTlsOptions, host: string | undefined): Promise<tls.TLSSocket> {
  const options: tls.ConnectionOptions = {
    socket: raw,
    minVersion: TLS_MIN_VERSION,
    ciphers: cipherList(o.psk !== undefined),
    rejectUnauthorized: true,
  };
  if (host !== undefined) options.host = host;
  if (o.x509) {
    options.ca = o.x509.ca;
    if (o.x509.cert !== undefined) options.cert = o.x509.cert;
    if (o.x509.key !== undefined) options.key = o.x509.key;
    if (o.x509.servername !== undefined) options.servername = o.x509.servername;
  }
  const psk = o.psk;
  if (psk) {
    const key = pskKeyBytes(psk.key);
    options.pskCallback = () => ({ psk: key, identity: psk.identity });
    // No certificate is involved; checkServerIdentity must not demand one.
    options.checkServerIdentity = () => undefined;
  }
  return new Promise((resolve, reject) => {
    const socket = tls.connect(options);
    const fail = (why: string, cause?: unknown): void => {
      socket.destroy();
      raw.destroy();
      reject(new LunrigError('UNREACHABLE', `TLS handshake with the NBD server failed: ${why}`, { tls: true }, { cause }));
    };
    const onError = (err: Error): void => fail(tlsErrorText(err), err);
    const onClose = (): void => fail('connection closed');
    socket.once('error', onError);
    socket.once('close', onClose);
    socket.once('secureConnect', () => {
      socket.off('error', onError);
      socket.off('close', onClose);
      // With a PSK the session must have run on it (TLS 1.3 reports that as a reused session),
      // never on a certificate handshake the server fell back to.
      if (psk && !(socket.getProtocol() === 'TLSv1.3' ? socket.isSessionReused() : (socket.getCipher()?.name ?? '').includes('PSK'))) {
        fail('the server did not accept the pre-shared key');
        return;
      }
      resolve(socket);
    });
  });
}
