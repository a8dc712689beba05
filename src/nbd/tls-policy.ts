/**
 * The TLS policy both ends share: TLS 1.2 or later (proto.md "TLS versions":
 * MUST support 1.2, older SHOULD NOT be on by default), Node's default suites,
 * and — only when pre-shared keys are configured — PSK suites, which Node's
 * default list excludes with `!PSK`.
 */
import tls from 'node:tls';

export const TLS_MIN_VERSION = 'TLSv1.2' as const;

/**
 * TLS 1.2 PSK suites offered by gnutls clients (libnbd and qemu add
 * `+ECDHE-PSK:+DHE-PSK:+PSK` to NORMAL), forward-secret first. TLS 1.3 needs
 * none of these: OpenSSL runs the same PSK callbacks there with SHA-256 suites.
 */
const PSK_SUITES = [
  'ECDHE-PSK-CHACHA20-POLY1305',
  'ECDHE-PSK-AES256-CBC-SHA384',
  'ECDHE-PSK-AES128-CBC-SHA256',
  'PSK-AES256-GCM-SHA384',
  'PSK-AES128-GCM-SHA256',
  'PSK-CHACHA20-POLY1305',
];

/**
 * Node's default cipher list, plus the PSK suites when `psk` is set. Built
 * from the named suites and the exclusions of the default (not its `HIGH`
 * catch-all, which would let every PSK variant back in once `!PSK` is gone).
 *
 * With PSK the SHA-256 TLS 1.3 suites go first: OpenSSL binds a key from the
 * PSK callbacks to SHA-256, and skips it when the suite chosen hashes with
 * SHA-384 (Node's and gnutls' first choice), falling back to a certificate
 * handshake a PSK client cannot finish. The server must then honour its own
 * order (tls-options.ts sets honorCipherOrder).
 */
export function cipherList(psk: boolean): string {
  if (!psk) return tls.DEFAULT_CIPHERS;
  const parts = tls.DEFAULT_CIPHERS.split(':');
  const tls13 = parts.filter((p) => p.startsWith('TLS_'));
  const sha256First = ['TLS_AES_128_GCM_SHA256', 'TLS_CHACHA20_POLY1305_SHA256'].filter((p) => tls13.includes(p));
  const tls13Ordered = [...sha256First, ...tls13.filter((p) => !sha256First.includes(p))];
  const named = parts.filter((p) => !p.startsWith('TLS_') && !p.startsWith('!') && p !== 'HIGH');
  const exclusions = parts.filter((p) => p.startsWith('!') && p !== '!PSK');
  return [...tls13Ordered, ...named, ...PSK_SUITES, ...exclusions].join(':');
}
