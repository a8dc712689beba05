/** workerUrl: TypeScript callers get the compiled worker under dist/, compiled callers a sibling. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workerUrl } from '../../../src/util/worker-url.js';

describe('workerUrl', () => {
  let root: string;
  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'lunrig-worker-url-'));
    fs.mkdirSync(path.join(root, 'dist/io/bulk'), { recursive: true });
    fs.writeFileSync(path.join(root, 'dist/io/io-worker.js'), '');
    fs.writeFileSync(path.join(root, 'dist/io/bulk/bulk-worker.js'), '');
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('maps a caller under src/ (.ts) to the same place under dist/', () => {
    const from = pathToFileURL(path.join(root, 'src/io/worker-engine.ts')).href;
    expect(workerUrl(from, './io-worker.js').href).toBe(pathToFileURL(path.join(root, 'dist/io/io-worker.js')).href);
    const bulk = pathToFileURL(path.join(root, 'src/io/bulk/bulk-jobs.ts')).href;
    expect(workerUrl(bulk, './bulk-worker.js').href).toBe(pathToFileURL(path.join(root, 'dist/io/bulk/bulk-worker.js')).href);
  });

  it('resolves next to a compiled caller', () => {
    const from = pathToFileURL(path.join(root, 'dist/io/worker-engine.js')).href;
    expect(workerUrl(from, './io-worker.js').href).toBe(pathToFileURL(path.join(root, 'dist/io/io-worker.js')).href);
  });

  it('says to build when the compiled worker is missing', () => {
    const from = pathToFileURL(path.join(root, 'src/io/worker-engine.ts')).href;
    expect(() => workerUrl(from, './nope.js')).toThrow(/run npm run build/);
  });

  it("finds this repository's real workers (built before the tests)", () => {
    expect(fs.existsSync(workerUrl(new URL('../../../src/io/worker-engine.ts', import.meta.url).href, './io-worker.js'))).toBe(true);
  });
});
