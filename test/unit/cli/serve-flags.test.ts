/**
 * The copy-service flags of `lunrig serve`: what they ask of startServer,
 * and a bad --durability refused with a one-line usage error (exit 2).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { copyServiceOptions } from '../../../src/cli/commands-serve.js';

const MAIN = path.resolve(import.meta.dirname, '../../../dist/cli/main.js');

describe('lunrig serve copy-service flags', () => {
  it('--durability power reaches FlashCopy (cowDurability) and PPRC (track marks); the PPRC flags map one to one', () => {
    expect(copyServiceOptions({ durability: 'power', pprcAckTimeout: 500, pprcOnFail: 'suspend-and-complete', pprcHeartbeat: 900, pprcFsyncOnAck: true })).toEqual({
      cowDurability: 'power',
      pprc: { durability: 'power', remoteAckTimeoutMs: 500, failedWritePolicy: 'suspend-and-complete', heartbeatTimeoutMs: 900, fsyncOnAck: true },
    });
    expect(copyServiceOptions({})).toEqual({ pprc: {} });
  });

  it('--durability with an unknown rule is a usage error, exit 2', async () => {
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(process.execPath, [MAIN, 'serve', '--durability', 'sometimes'], { timeout: 20_000 }, (err, _stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stderr }));
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/durability/);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });
});
