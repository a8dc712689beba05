import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ControlClient } from '../../../src/control/client.js';
import { createControlServer, type ControlServer } from '../../../src/control/server.js';
import { LunrigError, isLunrigError, type ErrorCode } from '../../../src/errors.js';
import { Pool } from '../../../src/store/pool.js';
import { GiB } from '../../../src/util/size.js';
import { tempDirs } from '../../helpers/temp-dir.js';

const temp = tempDirs('lunrig-client-');
let pool: Pool;
let server: ControlServer;
let client: ControlClient;

beforeEach(async () => {
  pool = await Pool.open({ dir: temp.make(), serial: 'FCA24', engine: 'fs' });
  server = await createControlServer(pool, { port: 0 });
  client = new ControlClient(server.url);
});

afterEach(async () => {
  await server.close();
  await pool.close();
  temp.cleanup();
});

async function rejection(promise: Promise<unknown>): Promise<LunrigError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isLunrigError(err)) throw new Error(`expected a LunrigError, got ${String(err)}`);
  return err;
}

async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<LunrigError> {
  const err = await rejection(promise);
  expect(err.code).toBe(code);
  return err;
}

/** A port nothing listens on: bind, note, close. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

describe('createControlServer', () => {
  it('binds 127.0.0.1 by default and reports its URL', () => {
    expect(server.address.host).toBe('127.0.0.1');
    expect(server.address.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.address.port}`);
  });

  it('fails with a LunrigError when the port is taken', async () => {
    const err = await expectCode(createControlServer(pool, { port: server.address.port }), 'IO_ERROR');
    expect(err.message).toContain(server.url);
    expect(err.details).toEqual({ errno: 'EADDRINUSE' });
  });
});

describe('ControlClient', () => {
  it('CP-01: drives every LUN endpoint; ids end in the serial', async () => {
    expect((await client.system()).pool.serial).toBe('FCA24');
    const created = await client.createLun({ name: 'a', size: '1G', lss: '11', readOnly: true });
    expect(created).toMatchObject({ name: 'a', size: GiB, lssAddress: '2105:FCA24:11', volumeId: '100FCA24', readOnly: true });
    expect(await client.listLuns()).toEqual([created]);
    expect(await client.lunInfo('a')).toEqual({ ...created, allocatedBytes: expect.any(Number) });
    expect((await client.growLun('a', 2 * GiB)).size).toBe(2 * GiB);
    await client.deleteLun('a');
    expect(await client.listLuns()).toEqual([]);
  });

  it('turns error bodies back into the same LunrigError: code, message, details', async () => {
    await client.createLun({ name: 'a', size: '1G' });
    const exists = await expectCode(client.createLun({ name: 'a', size: '1G' }), 'LUN_EXISTS');
    expect(exists).toBeInstanceOf(LunrigError);
    expect(exists.message).toBe("a LUN named 'a' already exists");
    expect(exists.details).toEqual({ lun: 'a' });
    await expectCode(client.lunInfo('nope'), 'LUN_NOT_FOUND');
    await expectCode(client.growLun('a', '1M'), 'SHRINK_NOT_SUPPORTED');
    await expectCode(client.createLun({ name: 'b', size: 1000 }), 'INVALID_SIZE');
    await expectCode(client.deleteLun('nope'), 'LUN_NOT_FOUND');
  });

  it('encodes LUN names in paths', async () => {
    await expectCode(client.lunInfo('a/../../v1/system'), 'LUN_NOT_FOUND');
    await expectCode(client.deleteLun('x?y#z'), 'LUN_NOT_FOUND');
  });

  it('says clearly when no server answers (connection refused)', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const err = await expectCode(new ControlClient(url).listLuns(), 'UNREACHABLE');
    expect(err.message).toBe(`cannot reach lunrig server at ${url}: is \`lunrig serve\` running?`);
    expect(err.details).toMatchObject({ url, cause: 'ECONNREFUSED' });
  });

  describe('against something that is not lunrig', () => {
    let other: Server;
    let url: string;
    beforeEach(async () => {
      other = createServer((req, res) => {
        if (req.url === '/v1/luns/slow') return; // never answers
        res.writeHead(req.url === '/v1/system' ? 200 : 502, { 'content-type': 'text/html' }).end('<html>bad gateway</html>');
      });
      await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
    });
    afterEach(async () => {
      other.closeAllConnections();
      await new Promise((resolve) => other.close(resolve));
    });

    it('reports an unexpected answer as IO_ERROR with the status', async () => {
      const err = await expectCode(new ControlClient(url).listLuns(), 'IO_ERROR');
      expect(err.message).toContain('HTTP 502');
      await expectCode(new ControlClient(url).system(), 'IO_ERROR');
    });

    it('gives up after its timeout with UNREACHABLE', async () => {
      const err = await expectCode(new ControlClient(url, { timeoutMs: 200 }).lunInfo('slow'), 'UNREACHABLE');
      expect(err.message).toContain('did not answer within 200 ms');
    });
  });

  it('rejects a server URL that is not http(s)', () => {
    expect(() => new ControlClient('127.0.0.1:10810')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => new ControlClient('ftp://x')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

