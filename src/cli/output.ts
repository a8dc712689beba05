/**
 * What the CLI prints. Human output is aligned tables and key/value blocks
 * with sizes formatted; `--json` output is one JSON document on stdout.
 */
import type { LunDetail } from '../control/client.js';
import type { LunInfo } from '../store/pool.js';
import { formatSize } from '../util/size.js';

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

export function printLines(lines: readonly string[]): void {
  if (lines.length > 0) process.stdout.write(`${lines.join('\n')}\n`);
}

/** Columns padded to their widest cell; the last column is not padded. */
export function table(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string[] {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)];
}

/** `label: value` lines with the values aligned. */
export function keyValues(pairs: ReadonlyArray<readonly [string, string]>): string[] {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(width + 1)}  ${v}`);
}

export function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

export function lunTable(luns: readonly LunInfo[]): string[] {
  if (luns.length === 0) return ['no LUNs'];
  return table(
    ['NAME', 'SIZE', 'LSS', 'VOL', 'VOLUME ID', 'MODE', 'UNIQUE ID'],
    luns.map((l) => [l.name, formatSize(l.size), hex2(l.lss), hex2(l.volumeNumber), l.volumeId, l.readOnly ? 'ro' : 'rw', l.uniqueId]),
  );
}

export function lunDetail(lun: LunDetail): string[] {
  return keyValues([
    ['name', lun.name],
    ['size', `${formatSize(lun.size)} (${lun.size} bytes)`],
    ['allocated', `${formatSize(lun.allocatedBytes)} (${lun.allocatedBytes} bytes)`],
    ['LSS', `${hex2(lun.lss)} (${lun.lssAddress})`],
    ['volume number', hex2(lun.volumeNumber)],
    ['volume id', lun.volumeId],
    ['unique id', lun.uniqueId],
    ['mode', lun.readOnly ? 'read-only' : 'read-write'],
    ['created', lun.createdAt],
  ]);
}
