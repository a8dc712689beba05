/** DatasyncGate (fs engine group commit): concurrent callers share fdatasyncs; a failure sticks. */
import { describe, expect, it } from 'vitest';
import { DatasyncGate } from '../../../src/io/datasync-gate.js';

function fakeSync(): { gate: DatasyncGate; finish: (err?: Error) => void; count: () => number } {
  const pending: ((err?: Error) => void)[] = [];
  let started = 0;
  const gate = new DatasyncGate(
    () =>
      new Promise<void>((resolve, reject) => {
        pending.push((err) => (err ? reject(err) : resolve()));
      }),
    () => started++,
  );
  return {
    gate,
    finish: (err) => pending.shift()!(err),
    count: () => started,
  };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('DatasyncGate', () => {
  it('runs one fdatasync for callers arriving while another runs, and never reuses an earlier one', async () => {
    const f = fakeSync();
    const first = f.gate.sync();
    const late = [f.gate.sync(), f.gate.sync(), f.gate.sync()];
    expect(f.count()).toBe(1);
    let lateDone = false;
    void Promise.all(late).then(() => (lateDone = true));
    f.finish();
    await first;
    await tick();
    expect(lateDone).toBe(false); // they need a sync that started after their call
    expect(f.count()).toBe(2);
    f.finish();
    await Promise.all(late);
    expect(f.count()).toBe(2);
  });

  it('fails every later sync once one failed', async () => {
    const f = fakeSync();
    const a = f.gate.sync();
    f.finish(Object.assign(new Error('EIO'), { code: 'EIO' }));
    await expect(a).rejects.toThrow('EIO');
    await expect(f.gate.sync()).rejects.toThrow('EIO');
    expect(f.count()).toBe(1);
  });
});
