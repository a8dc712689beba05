import fs from 'node:fs';
import path from 'node:path';
import type { LunBackendSpec } from '../../src/io/backend.js';

/**
 * Creates the segment files `<dir>/<name>.<i>` of a LUN the way the store does:
 * sparse, the last one sized to the remainder (at least one file, even for size 0).
 */
export function makeLunSpec(dir: string, name: string, size: number, segmentSize: number, readOnly = false): LunBackendSpec {
  const count = Math.max(1, Math.ceil(size / segmentSize));
  const segments: string[] = [];
  for (let i = 0; i < count; i++) {
    const file = path.join(dir, `${name}.${i}`);
    fs.writeFileSync(file, '');
    fs.truncateSync(file, Math.min(segmentSize, size - i * segmentSize));
    segments.push(file);
  }
  return { segments, segmentSize, size, readOnly };
}
