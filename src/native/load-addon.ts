/**
 * Finds and loads the compiled addon, native/build/Release/lunrig_native.node.
 * This file runs as src/native/load-addon.ts (vitest, tsx) and as
 * dist/native/load-addon.js, so the package root is found by walking up to
 * lunrig's package.json rather than by a fixed relative path.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BitmapRoutines, SyscallRoutines } from './types.js';

/** The addon's exports: the routines plus a few extras for tests and benchmarks. */
export interface RawAddon extends BitmapRoutines, SyscallRoutines {
  crc32c(data: Uint8Array, previous?: number): number;
  /** The portable slicing-by-8 path, whatever the CPU. */
  crc32cSoftware(data: Uint8Array, previous?: number): number;
  /** The SSE4.2 crc32 path at every length (slicing-by-8 without SSE4.2), for tests. */
  crc32cSse42(data: Uint8Array, previous?: number): number;
  /**
   * 'vpclmulqdq+sse4.2', 'sse4.2+pclmul' or 'slicing-by-8': what crc32c uses
   * on this CPU (the first keeps to SSE4.2 below 512 bytes).
   */
  readonly crc32cImplementation: string;
}

export const ADDON_RELATIVE_PATH = join('native', 'build', 'Release', 'lunrig_native.node');

/** The nearest ancestor of `from` holding the package.json of "lunrig". */
export function findPackageRoot(from: string): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === 'lunrig') return dir;
      } catch {
        // An unreadable manifest is not ours; keep walking.
      }
    }
    if (dirname(dir) === dir) return undefined;
  }
}

const EXPECTED = ['setRange', 'findNextSet', 'popcount', 'or', 'crc32c', 'punchHole', 'seekData', 'fdatasync', 'preadNowait'];

export function loadAddon(): { addon: RawAddon; error?: undefined } | { addon?: undefined; error: Error } {
  try {
    const here = dirname(fileURLToPath(import.meta.url));
    const root = findPackageRoot(here);
    if (root === undefined) throw new Error(`no package.json named "lunrig" above ${here}`);
    const addon = createRequire(import.meta.url)(join(root, ADDON_RELATIVE_PATH)) as RawAddon;
    // A stale build from an older source tree would fail later and stranger.
    const missing = EXPECTED.filter((name) => typeof (addon as unknown as Record<string, unknown>)[name] !== 'function');
    if (missing.length > 0) throw new Error(`lunrig_native.node lacks ${missing.join(', ')}: rebuild it`);
    return { addon };
  } catch (cause) {
    return { error: cause instanceof Error ? cause : new Error(String(cause)) };
  }
}
