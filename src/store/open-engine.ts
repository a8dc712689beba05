/** Chooses the I/O engine a pool runs on: worker threads unless told otherwise. */
import { LunrigError } from '../errors.js';
import type { IoEngine } from '../io/backend.js';

export type EngineKind = 'worker' | 'fs';

export function engineKindFromEnv(value = process.env.LUNRIG_IO): EngineKind | undefined {
  if (value === undefined || value === '') return undefined;
  if (value === 'worker' || value === 'fs') return value;
  throw new LunrigError('INVALID_CONFIG', `LUNRIG_IO must be 'worker' or 'fs', got '${value}'`);
}

export async function openEngine(kind: EngineKind | undefined): Promise<IoEngine> {
  const chosen = kind ?? engineKindFromEnv() ?? 'worker';
  switch (chosen) {
    case 'fs': {
      const { FsIoEngine } = await import('../io/fs-engine.js');
      return new FsIoEngine();
    }
    case 'worker': {
      const { WorkerIoEngine } = await import('../io/worker-engine.js');
      return WorkerIoEngine.start();
    }
    default:
      throw new LunrigError('INVALID_CONFIG', `unknown I/O engine '${String(chosen)}'`);
  }
}
