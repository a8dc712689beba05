/**
 * `lunrig serve` with NBD TLS (spec/nbd.md §2.2 STARTTLS): the nbdkit-style
 * flags load X.509 and PSK credentials, 'require' refuses plaintext clients,
 * and libnbd's nbdinfo gets in with either credential. Bad flag combinations
 * fail at start-up with one line and exit 1.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServe, runLunrig, stopAllServes, type ServeProcess } from '../helpers/serve-process.js';
import { makeTlsFixtures, missingOpenssl, type TlsFixtures } from '../unit/nbd/tls-fixtures.js';
import { killChildren, missing, run, runOk } from './nbd-harness.js';

const skip = missingOpenssl() ?? missing('nbdinfo');
if (skip) console.warn(`serve-nbd-tls: ${skip}`);

let f: TlsFixtures;
let s: ServeProcess;

beforeAll(async () => {
  if (skip) return;
  f = await makeTlsFixtures();
  s = await startServe({ args: ['--tls', 'require', '--tls-certificates', f.serverDir, '--tls-verify-peer', '--tls-psk', f.pskFile, '--nbd', 'none'] });
});

afterAll(async () => {
  killChildren();
  await stopAllServes();
  await f?.cleanup();
});

describe.skipIf(skip)('serve with NBD TLS', () => {
  const x509Uri = (dir: string) => `nbds+unix:///lun0?socket=${s.socket}&tls-certificates=${dir}`;
  const pskUri = (file: string) => `nbds+unix://${f.pskIdentity}@/lun0?socket=${s.socket}&tls-psk-file=${file}`;

  it('§2.2 STARTTLS: a client certificate from the CA gets in (--tls-certificates --tls-verify-peer)', async () => {
    const { stdout } = await runOk('nbdinfo', ['--size', x509Uri(f.clientDir)]);
    expect(stdout.trim()).toBe(String(1024 ** 3));
  });

  it('§2.2 STARTTLS: the right pre-shared key gets in (--tls-psk)', async () => {
    const { stdout } = await runOk('nbdinfo', ['--size', pskUri(f.pskFile)]);
    expect(stdout.trim()).toBe(String(1024 ** 3));
  });

  it('§2.2 FORCEDTLS: plaintext, a wrong key, no client certificate and a foreign CA are refused; the server keeps serving', async () => {
    for (const uri of [`nbd+unix:///lun0?socket=${s.socket}`, pskUri(f.wrongPskFile), x509Uri(f.clientNoCertDir), x509Uri(f.rogueClientDir)]) {
      const r = await run('nbdinfo', ['--size', uri]);
      expect(r.code, uri).not.toBe(0);
    }
    await runOk('nbdinfo', ['--size', pskUri(f.pskFile)]);
  });

  it('bad TLS flags fail at start-up with one line and exit 1', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--tls', 'require'], /INVALID_CONFIG: --tls require needs --tls-certificates/],
      [['--tls', 'off', '--tls-psk', f.pskFile], /INVALID_CONFIG: --tls off contradicts/],
      [['--tls-verify-peer', '--tls-psk', f.pskFile], /INVALID_CONFIG: --tls-verify-peer needs --tls-certificates/],
      [['--tls-certificates', f.pskDir], /lunrig: [A-Z_]+: /],
    ];
    for (const [flags, message] of cases) {
      const r = await runLunrig(['serve', '--data', `${f.dir}/never`, '--control', '127.0.0.1:0', '--nbd', 'none', ...flags]);
      expect(r.code, flags.join(' ')).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(message);
    }
  });
});
