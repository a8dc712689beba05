/**
 * The one place that writes state which must survive a crash (DESIGN.md rules).
 * A metadata file is replaced atomically: write a temp file beside it, fsync it,
 * rename over the old one, fsync the directory. A reader therefore sees the old
 * or the new version, never a torn one, even after kill -9 or power loss.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { LunrigError, fromSystemError } from '../errors.js';

const TMP_SUFFIX = '.tmp-';

export async function fsyncDir(dir: string): Promise<void> {
  const handle = await fsp.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const dir = path.dirname(file);
  const tmp = `${file}${TMP_SUFFIX}${process.pid}-${Date.now().toString(36)}`;
  try {
    const handle = await fsp.open(tmp, 'w', 0o644);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fsp.rename(tmp, file);
    await fsyncDir(dir);
  } catch (err) {
    await fsp.rm(tmp, { force: true }).catch(() => undefined);
    throw fromSystemError(err, `writing ${file}`);
  }
}

export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`);
}

/** Read and parse a JSON file; undefined when it does not exist; POOL_CORRUPT when it does not parse. */
export async function readJsonFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fromSystemError(err, `reading ${file}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new LunrigError('POOL_CORRUPT', `${file} is not valid JSON: ${(err as Error).message}`, { file });
  }
}

/** Remove temp files a crash left behind beside metadata files in `dir`. */
export async function removeStaleTempFiles(dir: string): Promise<string[]> {
  const names = await fsp.readdir(dir).catch(() => [] as string[]);
  const stale = names.filter((n) => n.includes(TMP_SUFFIX));
  await Promise.all(stale.map((n) => fsp.rm(path.join(dir, n), { force: true })));
  return stale;
}
