/**
 * Throwaway TLS credentials for the NBD TLS tests, made with the openssl CLI
 * in a temp dir at test time (no key is ever committed), laid out the way
 * qemu, nbdkit and libnbd read them:
 *
 *   server/         ca-cert.pem server-cert.pem server-key.pem
 *   client/         ca-cert.pem client-cert.pem client-key.pem   (CN=host-a)
 *   client-nocert/  ca-cert.pem
 *   rogue-client/   ca-cert.pem + a client pair signed by another CA (CN=mallory)
 *   psk/keys.psk    alice:<32-byte hex>          (qemu's tls-creds-psk dir=)
 *   psk-wrong/keys.psk  alice:<another key>
 *
 * The server certificate is for localhost and 127.0.0.1. EC P-256 keys keep
 * generation fast; the key usages satisfy gnutls' (qemu's) checks.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TlsFixtures {
  dir: string;
  serverDir: string;
  clientDir: string;
  clientNoCertDir: string;
  rogueClientDir: string;
  pskDir: string;
  pskFile: string;
  wrongPskFile: string;
  pskIdentity: string;
  pskKey: Buffer;
  /** PEM contents, for the option-object API. */
  pem: { ca: Buffer; rogueCa: Buffer; serverCert: Buffer; serverKey: Buffer; clientCert: Buffer; clientKey: Buffer; rogueCert: Buffer; rogueKey: Buffer };
  cleanup(): Promise<void>;
}

/** Why the TLS tests cannot run here, or undefined when they can. */
export function missingOpenssl(): string | undefined {
  const r = spawnSync('openssl', ['version'], { stdio: 'ignore' });
  return r.status === 0 ? undefined : 'skipped: openssl not installed (Debian package: openssl)';
}

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`);
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

function selfSignedCa(work: string, name: string, cn: string): void {
  openssl(
    ['req', '-x509', ...EC, '-keyout', `${name}-key.pem`, '-out', `${name}-cert.pem`, '-days', '2', '-subj', `/CN=${cn}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    work,
  );
}

async function leaf(work: string, name: string, subj: string, ca: string, serial: number, ext: string): Promise<void> {
  await writeFile(join(work, `${name}.ext`), ext);
  openssl(['req', '-new', ...EC, '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', subj], work);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}-cert.pem`, '-CAkey', `${ca}-key.pem`, '-set_serial', String(serial), '-days', '2', '-out', `${name}-cert.pem`, '-extfile', `${name}.ext`], work);
}

const usage = (purpose: string): string => `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=${purpose}\n`;

export async function makeTlsFixtures(): Promise<TlsFixtures> {
  const dir = await mkdtemp(join(tmpdir(), 'lunrig-nbd-tls-'));
  const work = join(dir, 'work');
  await mkdir(work);
  selfSignedCa(work, 'ca', 'lunrig test CA');
  selfSignedCa(work, 'rogue-ca', 'some other CA');
  await leaf(work, 'server', '/CN=localhost', 'ca', 2, `${usage('serverAuth')}subjectAltName=DNS:localhost,IP:127.0.0.1\n`);
  await leaf(work, 'client', '/O=lunrig/CN=host-a', 'ca', 3, usage('clientAuth'));
  await leaf(work, 'rogue', '/CN=mallory', 'rogue-ca', 4, usage('clientAuth'));

  const layout: Record<string, [string, string][]> = {
    server: [['ca-cert.pem', 'ca-cert.pem'], ['server-cert.pem', 'server-cert.pem'], ['server-key.pem', 'server-key.pem']],
    client: [['ca-cert.pem', 'ca-cert.pem'], ['client-cert.pem', 'client-cert.pem'], ['client-key.pem', 'client-key.pem']],
    'client-nocert': [['ca-cert.pem', 'ca-cert.pem']],
    'rogue-client': [['ca-cert.pem', 'ca-cert.pem'], ['rogue-cert.pem', 'client-cert.pem'], ['rogue-key.pem', 'client-key.pem']],
  };
  for (const [sub, files] of Object.entries(layout)) {
    await mkdir(join(dir, sub));
    for (const [from, to] of files) await copyFile(join(work, from), join(dir, sub, to));
  }

  const pskIdentity = 'alice';
  const pskKey = randomBytes(32);
  const pskDir = join(dir, 'psk');
  await mkdir(pskDir);
  await mkdir(join(dir, 'psk-wrong'));
  await writeFile(join(pskDir, 'keys.psk'), `${pskIdentity}:${pskKey.toString('hex')}\n`, { mode: 0o600 });
  await writeFile(join(dir, 'psk-wrong', 'keys.psk'), `${pskIdentity}:${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });

  const read = (f: string): Promise<Buffer> => readFile(join(work, f));
  const pem = {
    ca: await read('ca-cert.pem'),
    rogueCa: await read('rogue-ca-cert.pem'),
    serverCert: await read('server-cert.pem'),
    serverKey: await read('server-key.pem'),
    clientCert: await read('client-cert.pem'),
    clientKey: await read('client-key.pem'),
    rogueCert: await read('rogue-cert.pem'),
    rogueKey: await read('rogue-key.pem'),
  };
  return {
    dir,
    serverDir: join(dir, 'server'),
    clientDir: join(dir, 'client'),
    clientNoCertDir: join(dir, 'client-nocert'),
    rogueClientDir: join(dir, 'rogue-client'),
    pskDir,
    pskFile: join(pskDir, 'keys.psk'),
    wrongPskFile: join(dir, 'psk-wrong', 'keys.psk'),
    pskIdentity,
    pskKey,
    pem,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
