/**
 * TLS configuration: the PSK file format (psktool's identity:hexkey), the
 * qemu/nbdkit X.509 directory layout, and the server's option checks, which
 * must fail at start-up rather than in a client's handshake.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLunrigError } from '../../../src/errors.js';
import { ExportRegistry } from '../../../src/nbd/export-provider.js';
import { NbdServer } from '../../../src/nbd/server.js';
import { loadPskFile, loadX509Directory } from '../../../src/nbd/tls-files.js';
import { resolveServerTls } from '../../../src/nbd/tls-options.js';
import { cipherList } from '../../../src/nbd/tls-policy.js';
import { formatPskLine, parsePskFile, resolvePskKeys } from '../../../src/nbd/tls-psk.js';
import { makeTlsFixtures, missingOpenssl, type TlsFixtures } from './tls-fixtures.js';

const KEY = '0123456789abcdef0123456789abcdef';
const invalidConfig = (e: unknown): boolean => isLunrigError(e, 'INVALID_CONFIG');

describe('PSK files (identity:hexkey, as psktool writes them)', () => {
  it('parses lines, tolerating CRLF, blank lines and # comments', () => {
    const keys = parsePskFile(`# lunrig hosts\nalice:${KEY}\r\n\nhost-b:${KEY.toUpperCase()}ff\n`);
    expect([...keys.keys()]).toEqual(['alice', 'host-b']);
    expect(keys.get('alice')!.toString('hex')).toBe(KEY);
    expect(keys.get('host-b')!.length).toBe(17);
  });

  it.each([
    ['no separator', `alice${KEY}`],
    ['odd hex', `alice:${KEY}f`],
    ['not hex', `alice:${'zz'.repeat(16)}`],
    ['key shorter than 16 bytes', 'alice:00112233'],
    ['empty identity', `:${KEY}`],
    ['identity twice', `alice:${KEY}\nalice:${KEY}`],
  ])('refuses %s with INVALID_CONFIG naming the line', (_what, text) => {
    expect(() => parsePskFile(text, 'keys.psk')).toThrow(/keys\.psk line \d/);
    try {
      parsePskFile(text);
    } catch (e) {
      expect(invalidConfig(e)).toBe(true);
    }
  });

  it('formatPskLine round-trips; identities that a file cannot hold are refused', () => {
    const key = Buffer.alloc(32, 0xab);
    expect(parsePskFile(formatPskLine('host-a', key)).get('host-a')).toEqual(key);
    expect(() => formatPskLine('a:b', key)).toThrow(/contains ':'/);
    expect(() => resolvePskKeys({ 'x\ny': KEY })).toThrow(/line break/);
    expect(() => resolvePskKeys(new Map([['a'.repeat(129), KEY]]))).toThrow(/longer than 128/);
  });

  it('loadPskFile reads a file, or keys.psk in a directory (qemu tls-creds-psk dir=)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lunrig-psk-'));
    try {
      await writeFile(join(dir, 'keys.psk'), `alice:${KEY}\n`);
      await writeFile(join(dir, 'empty.psk'), '# nothing\n');
      expect([...(await loadPskFile(join(dir, 'keys.psk'))).keys()]).toEqual(['alice']);
      expect([...(await loadPskFile(dir)).keys()]).toEqual(['alice']);
      await expect(loadPskFile(join(dir, 'empty.psk'))).rejects.toSatisfy(invalidConfig);
      await expect(loadPskFile(join(dir, 'missing.psk'))).rejects.toSatisfy(invalidConfig);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('server TLS options', () => {
  it("'off' (or none) resolves to no TLS; 'optional'/'require' need credentials", () => {
    expect(resolveServerTls(undefined)).toBeUndefined();
    expect(resolveServerTls({ mode: 'off', psk: { alice: KEY } })).toBeUndefined();
    expect(() => resolveServerTls({ mode: 'require' })).toThrow(/needs X\.509 credentials or pre-shared keys/);
    expect(() => resolveServerTls({ mode: 'optional', psk: {} })).toThrow(/PSK table is empty/);
    expect(() => resolveServerTls({ mode: 'sometimes' as 'off' })).toThrow(/TLS mode must be one of/);
  });

  it('PSK-only: PSK suites enabled, SHA-256 TLS 1.3 suites first, TLS 1.2 minimum', () => {
    const r = resolveServerTls({ mode: 'require', psk: new Map([['alice', KEY]]) })!;
    expect(r.mode).toBe('require');
    expect(r.psk!.get('alice')!.toString('hex')).toBe(KEY);
    expect(r.serverOptions.minVersion).toBe('TLSv1.2');
    expect(r.serverOptions.honorCipherOrder).toBe(true);
    const ciphers = String(r.serverOptions.ciphers).split(':');
    expect(ciphers[0]).toBe('TLS_AES_128_GCM_SHA256');
    expect(ciphers).toContain('PSK-AES256-GCM-SHA384');
    expect(ciphers).not.toContain('!PSK');
    expect(ciphers).not.toContain('HIGH');
    expect(cipherList(false)).toBe(tls.DEFAULT_CIPHERS);
  });

  it('a bad TLS configuration fails when the server is built', () => {
    expect(() => new NbdServer({ exports: new ExportRegistry(), tls: { mode: 'require', psk: { alice: '00' } } })).toThrow(/key of 1 bytes/);
  });
});

const skip = missingOpenssl();
if (skip) console.warn(`tls-credentials: ${skip}`);

describe.skipIf(skip)(`X.509 credentials${skip ? ` (${skip})` : ''}`, () => {
  let f: TlsFixtures;
  beforeAll(async () => {
    f = await makeTlsFixtures();
  });
  afterAll(async () => {
    await f?.cleanup();
  });

  it('loadX509Directory reads the qemu/nbdkit names for each endpoint', async () => {
    const server = await loadX509Directory(f.serverDir, 'server');
    expect(server.cert!.toString()).toContain('BEGIN CERTIFICATE');
    expect(server.key!.toString()).toContain('PRIVATE KEY');
    expect(server.ca).toEqual(f.pem.ca);
    const client = await loadX509Directory(f.clientDir, 'client');
    expect(client.cert).toEqual(f.pem.clientCert);
    const anonymous = await loadX509Directory(f.clientNoCertDir, 'client');
    expect(anonymous.cert).toBeUndefined();
    expect(anonymous.ca).toEqual(f.pem.ca);
  });

  it('loadX509Directory refuses incomplete directories', async () => {
    await expect(loadX509Directory(f.clientNoCertDir, 'server')).rejects.toThrow(/no server-cert\.pem/);
    expect(await loadX509Directory(f.serverDir, 'client')).toEqual({ ca: f.pem.ca }); // a client needs only the CA
  });

  it('a half pair, a missing CA for a client, a key not matching the certificate, or client verification without a CA are INVALID_CONFIG', async () => {
    const dir = join(f.dir, 'half');
    await mkdir(dir);
    await writeFile(join(dir, 'server-cert.pem'), f.pem.serverCert);
    await expect(loadX509Directory(dir, 'server')).rejects.toSatisfy(invalidConfig);
    await expect(loadX509Directory(dir, 'client')).rejects.toThrow(/no ca-cert\.pem/);
    expect(() => resolveServerTls({ mode: 'require', x509: { cert: f.pem.serverCert, key: f.pem.clientKey } })).toThrow(/TLS credentials rejected/);
    expect(() => resolveServerTls({ mode: 'require', x509: { cert: f.pem.serverCert, key: f.pem.serverKey, requestClientCert: true } })).toThrow(/needs a CA/);
    const ok = resolveServerTls({ mode: 'optional', x509: { cert: f.pem.serverCert, key: f.pem.serverKey, ca: f.pem.ca, requestClientCert: true } })!;
    expect(ok.clientCertRequired).toBe(true);
    expect(ok.serverOptions).toMatchObject({ requestCert: true, rejectUnauthorized: true });
    const lax = resolveServerTls({ mode: 'optional', x509: { cert: f.pem.serverCert, key: f.pem.serverKey, ca: f.pem.ca, requestClientCert: true, rejectUnauthorized: false } })!;
    expect(lax.clientCertRequired).toBe(false);
  });
});
