/**
 * Where a worker script lives. Workers always run compiled JavaScript: when the
 * caller itself runs from TypeScript sources (vitest, tsx: `.../src/x/y.ts`),
 * the worker is the same path under `dist/` with a `.js` suffix; otherwise it
 * sits next to the caller.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';
import { LunrigError } from '../errors.js';

export function workerUrl(fromImportMetaUrl: string, relativeJs: string): URL {
  const from = fileURLToPath(fromImportMetaUrl);
  let resolved: string;
  if (from.endsWith('.ts') && !from.endsWith('.d.ts')) {
    const parts = from.split(path.sep);
    const src = parts.lastIndexOf('src');
    if (src < 0) {
      throw new LunrigError('INTERNAL', `cannot map ${from} to its compiled location: no 'src' folder in its path`);
    }
    parts[src] = 'dist';
    resolved = path.resolve(path.dirname(parts.join(path.sep)), relativeJs);
  } else {
    resolved = path.resolve(path.dirname(from), relativeJs);
  }
  if (!existsSync(resolved)) {
    throw new LunrigError('INTERNAL', `compiled worker script ${resolved} is missing; run npm run build`, { path: resolved });
  }
  return pathToFileURL(resolved);
}
