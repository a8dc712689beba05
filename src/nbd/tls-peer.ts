/**
 * Who is at the other end of a TLS connection, as far as the handshake
 * proved it: a verified client certificate or a known pre-shared key. LUN
 * masking will match hosts on `kind` + `name`; nothing unverified is ever
 * reported as a name.
 */
import type { TLSSocket } from 'node:tls';

export type TlsPeerIdentity =
  /** A client certificate that verified against the server's CA. */
  | {
      kind: 'x509';
      /** The subject's CN, or the whole subject when it has no single CN. */
      name: string;
      /** One-line subject, e.g. "O=lunrig, CN=host-a". */
      subject: string;
      issuer: string;
      fingerprint256: string;
      serialNumber: string;
    }
  /** A pre-shared key the server knows: `name` is its identity. */
  | { kind: 'psk'; name: string }
  /** Encrypted, but the client proved no identity (no client certificate asked for, or not verified). */
  | { kind: 'anonymous' };

export interface TlsSessionInfo {
  /** 'TLSv1.2' or 'TLSv1.3'. */
  protocol: string;
  cipher: string;
  peer: TlsPeerIdentity;
}

/** "CN=a\nO=b" (Node's multi-line form) -> "CN=a, O=b". */
const oneLine = (dn: string): string => dn.split('\n').filter(Boolean).join(', ');

/**
 * Describe an established server-side session. `pskIdentity` is the identity
 * whose key the server handed to OpenSSL; it names the peer only if the
 * session really ran on that key (TLS 1.3: the PSK was accepted, which
 * OpenSSL reports as a reused session; TLS 1.2: a PSK cipher suite).
 */
export function describeServerSession(socket: TLSSocket, pskIdentity: string | undefined): TlsSessionInfo {
  const protocol = socket.getProtocol() ?? 'unknown';
  const cipher = socket.getCipher()?.name ?? 'unknown';
  const base = { protocol, cipher };
  if (pskIdentity !== undefined) {
    const onKey = protocol === 'TLSv1.3' ? socket.isSessionReused() : cipher.includes('PSK');
    if (onKey) return { ...base, peer: { kind: 'psk', name: pskIdentity } };
  }
  if (socket.authorized) {
    const cert = socket.getPeerX509Certificate();
    if (cert) {
      const cn = socket.getPeerCertificate().subject?.CN;
      const subject = oneLine(cert.subject);
      return {
        ...base,
        peer: {
          kind: 'x509',
          name: typeof cn === 'string' && cn !== '' ? cn : subject,
          subject,
          issuer: oneLine(cert.issuer),
          fingerprint256: cert.fingerprint256,
          serialNumber: cert.serialNumber,
        },
      };
    }
  }
  return { ...base, peer: { kind: 'anonymous' } };
}

/** "psk:alice", "x509:host-a", "anonymous": for logs and close reasons. */
export function peerLabel(peer: TlsPeerIdentity): string {
  return peer.kind === 'anonymous' ? 'anonymous' : `${peer.kind}:${peer.name}`;
}
