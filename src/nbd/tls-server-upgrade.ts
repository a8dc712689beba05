/**
 * The server half of NBD_OPT_STARTTLS: after the ACK, the plain socket is
 * handed to TLS and option haggling restarts on the encrypted stream.
 *
 * Each upgrade runs through its own (never listening) tls.Server fed with
 * `emit('connection')`: that is the path on which Node verifies a client
 * certificate and sets `authorized`, which a bare server-side TLSSocket does
 * not. A per-connection server also gives the PSK callback a per-connection
 * closure, and per-connection session-ticket keys, so no session is ever
 * resumed across connections (a resumed session would skip the checks that
 * establish the peer's identity).
 */
import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import tls from 'node:tls';
import { LunrigError } from '../errors.js';
import type { ResolvedServerTls } from './tls-options.js';
import { tlsErrorText } from './tls-errors.js';
import { describeServerSession, type TlsSessionInfo } from './tls-peer.js';

export interface ServerTlsUpgrade {
  socket: tls.TLSSocket;
  session: TlsSessionInfo;
}

/**
 * Start TLS on `raw` (the caller has stopped reading it and flushed the ACK).
 * Resolves once the handshake succeeded and the peer passed the
 * configuration's checks; otherwise destroys the connection and rejects.
 */
export function upgradeServerSocket(raw: net.Socket, cfg: ResolvedServerTls): Promise<ServerTlsUpgrade> {
  let pskIdentity: string | undefined;
  let unknownIdentity: string | undefined;
  const options: tls.TlsOptions = { ...cfg.serverOptions };
  const psk = cfg.psk;
  if (psk) {
    options.pskCallback = (_socket, identity) => {
      const key = psk.get(identity);
      if (!key) {
        // A random key fails the handshake exactly like a wrong one, so the
        // client cannot probe which identities exist (unknown_psk_identity would tell).
        unknownIdentity = identity;
        return randomBytes(32);
      }
      pskIdentity = identity;
      return key;
    };
  }
  const server = tls.createServer(options);
  return new Promise((resolve, reject) => {
    const fail = (socket: tls.TLSSocket | undefined, why: string): void => {
      socket?.destroy();
      raw.destroy();
      reject(new LunrigError('UNREACHABLE', `TLS handshake failed: ${why}`, { tls: true }));
    };
    server.once('secureConnection', (socket: tls.TLSSocket) => {
      const session = describeServerSession(socket, pskIdentity);
      // tls.Server already refused unverified certificates; this guards the policy itself.
      if (cfg.clientCertRequired && session.peer.kind === 'anonymous') {
        fail(socket, `client certificate not verified (${String(socket.authorizationError ?? 'none sent')})`);
        return;
      }
      socket.allowHalfOpen = true;
      resolve({ socket, session });
    });
    server.once('tlsClientError', (err: Error, socket: tls.TLSSocket) => {
      const auth = socket.authorizationError ? ` (client certificate: ${String(socket.authorizationError)})` : '';
      const who = unknownIdentity !== undefined ? ` (unknown PSK identity '${unknownIdentity}')` : pskIdentity !== undefined ? ` (PSK identity '${pskIdentity}')` : '';
      fail(socket, `${tlsErrorText(err)}${auth}${who}`);
    });
    // The plain socket is half-open capable (replies may follow a client's FIN); during the
    // handshake that would leave a client that hung up waiting for a timeout, so the TLS
    // socket starts without it and gets it back once established.
    raw.allowHalfOpen = false;
    server.emit('connection', raw);
  });
}
