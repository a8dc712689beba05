/**
 * Replays a crash-writer log (test/fixtures/crash-writer.mjs) and says, per
 * block, which byte values may legitimately be on disk after a kill -9: the
 * last value made durable, or any value written after it (which may or may not
 * have reached the disk). A block never made durable may also still be zero.
 */
export function acceptableValues(log: string): Map<number, Set<number>> {
  const lastWrite = new Map<number, number>();
  const acceptable = new Map<number, Set<number>>();
  const note = (offset: number, values: Set<number>) => acceptable.set(offset, values);
  for (const line of log.split('\n')) {
    const [kind, a, b] = line.trim().split(' ');
    if (kind === 'w') {
      const offset = Number(a);
      const byte = Number(b);
      lastWrite.set(offset, byte);
      const set = acceptable.get(offset) ?? new Set([0]);
      set.add(byte);
      note(offset, set);
    } else if (kind === 'fua') {
      const offset = Number(a);
      note(offset, new Set([lastWrite.get(offset)!]));
    } else if (kind === 'f') {
      for (const [offset, byte] of lastWrite) note(offset, new Set([byte]));
    }
  }
  return acceptable;
}
