/**
 * The FlashCopy operations a task can hold (spec §4.2, §2.8):
 *  - 'flashcopy.establish' { pairs: [{source, target}, ...], mode?, incremental?, grainSize?, rate?,
 *    permitIfTargetOnline?, relax? }: all pairs take one T0 (FC-22: FlashCopyManager.establishGroup),
 *    the run completes at T0 ("complete" means established, §4.2);
 *  - 'flashcopy.withdraw' { volumes: [...] }: withdraw each volume's relationship (source or target side).
 */
import { LunrigError } from '../../errors.js';
import type { EstablishOptions, FlashCopyManager, PairRequest, RelationshipInfo } from '../flashcopy/index.js';
import { RELAXATIONS, type Relaxation } from '../flashcopy/profile.js';
import { asObject, field, needService, type OperationKind, type TaskContext, type TaskProgress } from './operation-kinds.js';

export interface FlashCopyEstablishParams extends EstablishOptions {
  pairs: PairRequest[];
}

export interface FlashCopyWithdrawParams {
  volumes: string[];
}

const flashcopy = (context: TaskContext): FlashCopyManager => needService<FlashCopyManager>(context, 'flashcopy');

function volumeName(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.length === 0) throw new LunrigError('INVALID_ARGUMENT', `${what} must be a LUN name`);
  return v;
}

export const flashcopyEstablish: OperationKind<FlashCopyEstablishParams> = {
  kind: 'flashcopy.establish',
  describe: (p) => `FlashCopy ${p.mode === 'nocopy' ? 'NOCOPY' : 'COPY'} ${p.pairs.map((x) => `${x.source}->${x.target}`).join(' ')}`,
  validate(raw) {
    const p = asObject(raw);
    const known = ['pairs', 'mode', 'incremental', 'grainSize', 'rate', 'permitIfTargetOnline', 'relax'];
    const extra = Object.keys(p).filter((k) => !known.includes(k));
    if (extra.length > 0) throw new LunrigError('INVALID_ARGUMENT', `unknown FlashCopy establish parameter(s): ${extra.join(', ')}`);
    if (!Array.isArray(p.pairs) || p.pairs.length === 0) throw new LunrigError('INVALID_ARGUMENT', 'a FlashCopy establish task needs at least one pair');
    const pairs = p.pairs.map((x: unknown) => {
      const pair = asObject(x);
      return { source: volumeName(pair.source, 'a pair source'), target: volumeName(pair.target, 'a pair target') };
    });
    const names = pairs.flatMap((x) => [x.source, x.target]);
    if (new Set(names).size !== names.length) throw new LunrigError('INVALID_ARGUMENT', 'a volume appears twice in the task’s pairs');
    const mode = field(p, 'mode', 'string', true);
    if (mode !== undefined && mode !== 'copy' && mode !== 'nocopy') throw new LunrigError('INVALID_ARGUMENT', `mode must be 'copy' or 'nocopy', got '${String(mode)}'`);
    const rate = p.rate;
    if (rate !== undefined && rate !== null && typeof rate !== 'string' && typeof rate !== 'number') throw new LunrigError('INVALID_ARGUMENT', 'rate must be bytes per second, a size string or null');
    const grainSize = p.grainSize;
    if (grainSize !== undefined && typeof grainSize !== 'string' && typeof grainSize !== 'number') throw new LunrigError('INVALID_ARGUMENT', 'grainSize must be bytes or a size string');
    const relax = p.relax;
    if (relax !== undefined && (!Array.isArray(relax) || relax.some((r) => !(RELAXATIONS as readonly unknown[]).includes(r)))) {
      throw new LunrigError('INVALID_ARGUMENT', `relax must list rules among ${RELAXATIONS.join(', ')}`);
    }
    return {
      pairs,
      ...(mode !== undefined && { mode: mode as 'copy' | 'nocopy' }),
      ...(field(p, 'incremental', 'boolean', true) !== undefined && { incremental: p.incremental as boolean }),
      ...(grainSize !== undefined && { grainSize }),
      ...(rate !== undefined && { rate }),
      ...(field(p, 'permitIfTargetOnline', 'boolean', true) !== undefined && { permitIfTargetOnline: p.permitIfTargetOnline as boolean }),
      ...(relax !== undefined && { relax: relax as Relaxation[] }),
    };
  },
  async execute(params, context) {
    const fc = flashcopy(context);
    const { pairs, ...options } = params;
    // One pair: a plain relationship. Several: one T0 for all (FC-22), all or none.
    const relationships: RelationshipInfo[] =
      pairs.length === 1 ? [await fc.establish(pairs[0]!.source, pairs[0]!.target, options)] : (await fc.establishGroup({ ...options, pairs })).relationships;
    return { relationships };
  },
  progress(params, context) {
    const list = flashcopy(context).list();
    const items = params.pairs.map((pair) => {
      const r = list.find((x) => x.source === pair.source && x.target === pair.target);
      const name = `${pair.source}->${pair.target}`;
      // No relationship: it ended (COPY completed, or withdrawn) or was never established.
      if (!r) return { name, percent: 100, state: 'none', running: false };
      return { name, percent: r.state === 'copied' ? 100 : r.progress.percent, state: r.state, running: r.state === 'copying' };
    });
    const progress: TaskProgress = {
      running: items.some((i) => i.running),
      percent: items.length === 0 ? 100 : Math.min(...items.map((i) => i.percent)),
      items: items.map(({ name, percent, state }) => ({ name, percent, state })),
    };
    return progress;
  },
};

export const flashcopyWithdraw: OperationKind<FlashCopyWithdrawParams> = {
  kind: 'flashcopy.withdraw',
  describe: (p) => `FlashCopy withdraw ${p.volumes.join(' ')}`,
  validate(raw) {
    const p = asObject(raw);
    const extra = Object.keys(p).filter((k) => k !== 'volumes');
    if (extra.length > 0) throw new LunrigError('INVALID_ARGUMENT', `unknown FlashCopy withdraw parameter(s): ${extra.join(', ')}`);
    if (!Array.isArray(p.volumes) || p.volumes.length === 0) throw new LunrigError('INVALID_ARGUMENT', 'a FlashCopy withdraw task needs at least one volume');
    return { volumes: p.volumes.map((v: unknown) => volumeName(v, 'a volume')) };
  },
  async execute(params, context) {
    const fc = flashcopy(context);
    // Every volume is tried; the first refusal is the task's error.
    const results = await Promise.allSettled(params.volumes.map((v) => fc.withdraw(v)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return { withdrawn: results.flatMap((r) => (r.status === 'fulfilled' ? r.value : [])) };
  },
};
