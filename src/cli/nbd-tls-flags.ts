/**
 * `lunrig serve`'s TLS flags, named as nbdkit's so rig scripts carry over:
 * --tls off|on|optional|require, --tls-certificates DIR (qemu/nbdkit layout:
 * ca-cert.pem, server-cert.pem, server-key.pem), --tls-verify-peer,
 * --tls-psk FILE (`identity:hexkey` lines; a directory means its keys.psk).
 */
import { LunrigError } from '../errors.js';
import { loadPskFile, loadX509Directory } from '../nbd/tls-files.js';
import type { NbdServerTlsOptions, NbdTlsMode } from '../nbd/tls-options.js';

export interface TlsFlags {
  tls?: string;
  tlsCertificates?: string;
  tlsVerifyPeer?: boolean;
  tlsPsk?: string;
}

export const TLS_MODE_CHOICES = ['off', 'on', 'optional', 'require'] as const;

/** Undefined when TLS is off. Credentials without --tls mean 'require': a rig that hands out keys wants them used. */
export async function nbdTlsFromFlags(flags: TlsFlags): Promise<NbdServerTlsOptions | undefined> {
  const hasCredentials = flags.tlsCertificates !== undefined || flags.tlsPsk !== undefined;
  const mode: NbdTlsMode = flags.tls === undefined ? (hasCredentials ? 'require' : 'off') : flags.tls === 'on' ? 'optional' : (flags.tls as NbdTlsMode);
  if (mode === 'off') {
    if (hasCredentials) throw new LunrigError('INVALID_CONFIG', '--tls off contradicts --tls-certificates / --tls-psk');
    return undefined;
  }
  if (!hasCredentials) throw new LunrigError('INVALID_CONFIG', `--tls ${flags.tls} needs --tls-certificates DIR or --tls-psk FILE`);
  if (flags.tlsVerifyPeer && flags.tlsCertificates === undefined) throw new LunrigError('INVALID_CONFIG', '--tls-verify-peer needs --tls-certificates DIR (with ca-cert.pem)');
  const options: NbdServerTlsOptions = { mode };
  if (flags.tlsCertificates !== undefined) {
    options.x509 = { ...(await loadX509Directory(flags.tlsCertificates, 'server')), requestClientCert: flags.tlsVerifyPeer ?? false };
  }
  if (flags.tlsPsk !== undefined) options.psk = await loadPskFile(flags.tlsPsk);
  return options;
}

/** One line for the serve banner. */
export function describeTls(tls: NbdServerTlsOptions | undefined): string {
  if (!tls) return 'NBD TLS: off';
  const how = [tls.x509 && `X.509${tls.x509.requestClientCert ? ' (client certificates verified)' : ''}`, tls.psk && 'PSK'].filter(Boolean).join(' + ');
  return `NBD TLS: ${tls.mode} (${how}); clients use nbds:// URIs`;
}
