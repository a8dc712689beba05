/**
 * The PPRC and path operations a task can hold (spec §4.2 "any kind of
 * FlashCopy, PPRC, and path operation", §3.2, §3.3, §3.8, §3.9, §4.4):
 *
 *  - 'pprc.path'      { action: 'establish' | 'remove', paths: [{ lss, to, targetLss, links? }], ifExists?: 'skip' | 'replace' }
 *                     "Do not establish paths if they already exist" (skip: reported not executed) and
 *                     "Force removal of existing paths" (replace); one task may name several target LSSs.
 *  - 'pprc.establish' { pairs: [{ primary, secondary, ess? }], mode: COPY_ENTIRE | NO_COPY | OUT_OF_SYNC_ONLY,
 *                     criticalVolume?, permitIfTargetOnline?, force? }: the run completes once every pair is
 *                     established (PP-37: a COPY_ENTIRE pair is then still DUPLEX_PENDING); rsQueryComplete
 *                     waits on the copy through `progress` (PP-36).
 *  - 'pprc.suspend'   { pairs, from?: 'source' | 'target' }
 *  - 'pprc.terminate' { pairs, from?: 'source' | 'target' }: "scheduled with the source / target storage
 *                     server": from the source the task names the primary of this server (X8, both simplex);
 *                     from the target it names the secondary of this server (X9, only it becomes simplex).
 *  - 'pprc.freeze' / 'pprc.release' { lss: [...] }: §3.9, the primary LSSs of this server.
 *
 * Every kind runs against the TaskContext's `pprc` service (the server's
 * PprcManager) and has a `progress` over the pairs it touches, so
 * `rsQueryComplete -t N` waits until each of them has N % of its tracks
 * copied, and answers 80 when none of them is copying.
 *
 * Decisions where the document is silent ([E]): a task's pairs (or paths)
 * are handled one after another, in the order given; each is tried and the
 * task fails with the code of the first refusal (the others stay done: the
 * ESS does not roll a multi-pair establish back either), naming what ran.
 * Modes are accepted as COPY_ENTIRE / copy-entire (any case, '_' or '-') and
 * saved in the library's form.
 */
import { LunrigError, isLunrigError, type ErrorCode } from '../../errors.js';
import { parseLss } from '../../store/identity.js';
import type { PairInfo, PathRecord, PprcCopyMode, PprcManager } from '../pprc/index.js';
import { asObject, field, needService, type OperationKind, type OperationKinds, type TaskContext, type TaskProgress } from './operation-kinds.js';

export interface PprcPairSpec {
  primary: string;
  secondary: string;
  /** The secondary's ESS serial (default: this server's). */
  ess?: string;
}

export interface PprcPathSpec {
  lss: number;
  to: string;
  targetLss: number;
  /** Links the path uses (establish only). */
  links?: string[];
}

export interface PprcPathParams {
  action: 'establish' | 'remove';
  paths: PprcPathSpec[];
  ifExists?: 'skip' | 'replace';
}

export interface PprcEstablishParams {
  pairs: PprcPairSpec[];
  mode: PprcCopyMode;
  criticalVolume?: boolean;
  permitIfTargetOnline?: boolean;
  force?: boolean;
}

export interface PprcPairsParams {
  pairs: PprcPairSpec[];
  from: 'source' | 'target';
}

export interface PprcLssParams {
  lss: number[];
}

const pprcOf = (context: TaskContext): PprcManager => needService<PprcManager>(context, 'pprc');

const MODE_NAMES: Record<PprcCopyMode, string> = { 'copy-entire': 'COPY_ENTIRE', 'no-copy': 'NO_COPY', 'out-of-sync-only': 'OUT_OF_SYNC_ONLY' };

/** COPY_ENTIRE, copy-entire, copy_entire, ... -> 'copy-entire'. */
export function parseCopyMode(mode: unknown): PprcCopyMode {
  const m = typeof mode === 'string' ? mode.trim().toLowerCase().replace(/_/g, '-') : '';
  if (m === 'copy-entire' || m === 'no-copy' || m === 'out-of-sync-only') return m;
  throw new LunrigError('INVALID_ARGUMENT', `mode must be COPY_ENTIRE, NO_COPY or OUT_OF_SYNC_ONLY, got '${String(mode)}'`, { field: 'mode' });
}

function noExtra(p: Record<string, unknown>, known: readonly string[], what: string): void {
  const extra = Object.keys(p).filter((k) => !known.includes(k));
  if (extra.length > 0) throw new LunrigError('INVALID_ARGUMENT', `unknown ${what} parameter(s): ${extra.join(', ')}`);
}

function name(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.length === 0) throw new LunrigError('INVALID_ARGUMENT', `${what} must be a LUN name`);
  return v;
}

function serial(v: unknown, what: string): string {
  if (typeof v !== 'string' || !/^[0-9A-Z]{5}$/.test(v)) throw new LunrigError('INVALID_ARGUMENT', `${what} must be a 5-character ESS serial, got '${String(v)}'`);
  return v;
}

function lss(v: unknown, what: string): number {
  if (typeof v !== 'number' && typeof v !== 'string') throw new LunrigError('INVALID_ARGUMENT', `${what} must be an LSS (10..1f)`);
  return parseLss(v);
}

function pairsOf(p: Record<string, unknown>, what: string): PprcPairSpec[] {
  if (!Array.isArray(p.pairs) || p.pairs.length === 0) throw new LunrigError('INVALID_ARGUMENT', `a ${what} task needs at least one pair`);
  const pairs = p.pairs.map((x: unknown) => {
    const pair = asObject(x);
    noExtra(pair, ['primary', 'secondary', 'ess'], 'PPRC pair');
    return { primary: name(pair.primary, 'a pair primary'), secondary: name(pair.secondary, 'a pair secondary'), ...(pair.ess !== undefined && { ess: serial(pair.ess, 'a pair ess') }) };
  });
  const primaries = pairs.map((x) => x.primary);
  const secondaries = pairs.map((x) => `${x.ess ?? ''}:${x.secondary}`);
  if (new Set(primaries).size !== primaries.length || new Set(secondaries).size !== secondaries.length) {
    throw new LunrigError('INVALID_ARGUMENT', 'a volume appears in two of the task’s pairs (a volume is in at most one PPRC pair)');
  }
  return pairs;
}

function lssList(p: Record<string, unknown>, what: string): number[] {
  noExtra(p, ['lss'], what);
  if (!Array.isArray(p.lss) || p.lss.length === 0) throw new LunrigError('INVALID_ARGUMENT', `a ${what} task needs at least one LSS`);
  return [...new Set(p.lss.map((l: unknown) => lss(l, 'an LSS')))];
}

const pairName = (p: PprcPairSpec): string => `${p.primary}->${p.ess !== undefined ? `${p.ess}:` : ''}${p.secondary}`;
const hex = (n: number): string => n.toString(16).padStart(2, '0');

/**
 * Run `op` on each item in order; every item is tried. Resolves with the
 * results when all succeeded, else throws the first refusal's code with a
 * message naming what failed and what ran.
 */
async function each<T, R>(items: readonly T[], label: (item: T) => string, op: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  const failures: Array<{ item: string; error: unknown }> = [];
  const done: string[] = [];
  for (const item of items) {
    try {
      results.push(await op(item));
      done.push(label(item));
    } catch (error) {
      failures.push({ item: label(item), error });
    }
  }
  if (failures.length === 0) return results;
  const first = failures[0]!;
  if (items.length === 1) throw first.error;
  const code: ErrorCode = isLunrigError(first.error) ? first.error.code : 'INTERNAL';
  const text = (e: unknown): string => (isLunrigError(e) ? `${e.code}: ${e.message}` : e instanceof Error ? e.message : String(e));
  throw new LunrigError(code, `${failures.length} of ${items.length} failed: ${failures.map((f) => `${f.item} (${text(f.error)})`).join('; ')}${done.length > 0 ? `; done: ${done.join(' ')}` : ''}`, {
    failed: failures.map((f) => f.item),
    done,
  });
}

// --- progress -------------------------------------------------------------------

interface Item {
  name: string;
  percent: number;
  state: string;
  running: boolean;
}

/** Where one pair of a task stands, seen from this server (the primary's side, else the secondary's). */
function pairItem(pprc: PprcManager, spec: PprcPairSpec, pairs: readonly PairInfo[]): Item {
  const label = pairName(spec);
  const pair = pairs.find((x) => x.primary.volume === spec.primary && x.secondary.volume === spec.secondary && (spec.ess === undefined || x.secondary.serial === spec.ess));
  if (pair) return fromPair(label, pair);
  if (spec.ess === undefined || spec.ess === pprc.serial) {
    // Scheduled with the target storage server: only the secondary is here.
    try {
      const q = pprc.query(spec.secondary);
      if (q.role === 'target') return { name: label, percent: q.state === 'DUPLEX' ? 100 : 0, state: q.state, running: q.state === 'DUPLEX_PENDING' || q.state === 'ESTABLISHING' };
    } catch {
      // Not a LUN of this server.
    }
  }
  // No pair: terminated, never established, or not this server's.
  return { name: label, percent: 100, state: 'SIMPLEX', running: false };
}

function fromPair(label: string, pair: PairInfo): Item {
  const running = pair.state === 'DUPLEX_PENDING' || pair.state === 'ESTABLISHING';
  // 100 % means DUPLEX (PP-36, t=100): a pending pair whose last track is copied is not there until X3 happened.
  const percent = pair.state === 'DUPLEX' ? 100 : running ? Math.min(pair.percentCopied, 99.99) : pair.percentCopied;
  return { name: label, percent, state: pair.state, running };
}

function summarise(items: readonly Item[]): TaskProgress {
  return {
    running: items.some((i) => i.running),
    percent: items.length === 0 ? 100 : Math.min(...items.map((i) => i.percent)),
    items: items.map(({ name: n, percent, state }) => ({ name: n, percent, state })),
  };
}

function pairsProgress(pairs: readonly PprcPairSpec[], context: TaskContext): TaskProgress {
  const pprc = pprcOf(context);
  const list = pprc.list();
  return summarise(pairs.map((p) => pairItem(pprc, p, list)));
}

/** The pairs this server is the primary of whose primary LSS (and, given, secondary ESS and LSS) match. */
function pairsWhere(context: TaskContext, match: (pair: PairInfo) => boolean): TaskProgress {
  return summarise(
    pprcOf(context)
      .list()
      .filter(match)
      .map((pair) => fromPair(`${pair.primary.volume}->${pair.secondary.serial}:${pair.secondary.volume}`, pair)),
  );
}

// --- kinds ----------------------------------------------------------------------

export const pprcPath: OperationKind<PprcPathParams> = {
  kind: 'pprc.path',
  describe: (p) =>
    `PPRC path ${p.action}${p.ifExists ? ` (${p.ifExists === 'skip' ? 'do not establish if they exist' : 'force removal of existing paths'})` : ''} ${p.paths
      .map((x) => `${hex(x.lss)}->${x.to}:${hex(x.targetLss)}${x.links ? `[${x.links.join(',')}]` : ''}`)
      .join(' ')}`,
  validate(raw) {
    const p = asObject(raw);
    noExtra(p, ['action', 'paths', 'ifExists'], 'PPRC path');
    const action = p.action ?? 'establish';
    if (action !== 'establish' && action !== 'remove') throw new LunrigError('INVALID_ARGUMENT', `action must be 'establish' or 'remove', got '${String(action)}'`);
    const ifExists = field(p, 'ifExists', 'string', true);
    if (ifExists !== undefined && ifExists !== 'skip' && ifExists !== 'replace') throw new LunrigError('INVALID_ARGUMENT', `ifExists must be 'skip' or 'replace', got '${String(ifExists)}'`);
    if (ifExists !== undefined && action === 'remove') throw new LunrigError('INVALID_ARGUMENT', 'ifExists applies to establishing paths only');
    if (!Array.isArray(p.paths) || p.paths.length === 0) throw new LunrigError('INVALID_ARGUMENT', 'a PPRC path task needs at least one path');
    const paths = p.paths.map((x: unknown): PprcPathSpec => {
      const path = asObject(x);
      noExtra(path, ['lss', 'to', 'targetLss', 'links'], 'PPRC path');
      const spec: PprcPathSpec = { lss: lss(path.lss, 'a path lss'), to: serial(path.to, 'a path to'), targetLss: lss(path.targetLss, 'a path targetLss') };
      if (action === 'remove') {
        if (path.links !== undefined) throw new LunrigError('INVALID_ARGUMENT', 'removing a path takes no links');
        return spec;
      }
      if (!Array.isArray(path.links) || path.links.length === 0 || path.links.some((l) => typeof l !== 'string' || l.length === 0)) {
        throw new LunrigError('INVALID_ARGUMENT', 'establishing a path needs its links (link ids)');
      }
      return { ...spec, links: [...new Set(path.links as string[])] };
    });
    const keys = paths.map((x) => `${x.lss}/${x.to}/${x.targetLss}`);
    if (new Set(keys).size !== keys.length) throw new LunrigError('INVALID_ARGUMENT', 'a path appears twice in the task');
    return { action, paths, ...(ifExists !== undefined && { ifExists: ifExists as 'skip' | 'replace' }) };
  },
  async execute(params, context) {
    const pprc = pprcOf(context);
    const label = (x: PprcPathSpec): string => `${hex(x.lss)}->${x.to}:${hex(x.targetLss)}`;
    if (params.action === 'remove') {
      await each(params.paths, label, (x) => pprc.removePath({ lss: x.lss, to: x.to, targetLss: x.targetLss }));
      return { removed: params.paths.map(label) };
    }
    const results = await each(params.paths, label, (x) =>
      pprc.establishPath({ lss: x.lss, to: x.to, targetLss: x.targetLss, links: x.links ?? [], ...(params.ifExists !== undefined && { ifExists: params.ifExists }) }),
    );
    const paths: Array<PathRecord & { notExecuted: boolean }> = results.map((r) => ({ ...r.path, notExecuted: r.notExecuted }));
    return { paths };
  },
  progress: (params, context) =>
    pairsWhere(context, (pair) => params.paths.some((x) => x.lss === pair.primary.lss && x.to === pair.secondary.serial && x.targetLss === pair.secondary.lss)),
};

export const pprcEstablish: OperationKind<PprcEstablishParams> = {
  kind: 'pprc.establish',
  describe: (p) =>
    `PPRC ${MODE_NAMES[p.mode]}${p.criticalVolume ? ' critical' : ''}${p.permitIfTargetOnline ? ' permit-online' : ''}${p.force ? ' force' : ''} ${p.pairs.map(pairName).join(' ')}`,
  validate(raw) {
    const p = asObject(raw);
    noExtra(p, ['pairs', 'mode', 'criticalVolume', 'permitIfTargetOnline', 'force'], 'PPRC establish');
    const pairs = pairsOf(p, 'PPRC establish');
    if (p.mode === undefined) throw new LunrigError('INVALID_ARGUMENT', 'a PPRC establish task needs a mode: COPY_ENTIRE, NO_COPY or OUT_OF_SYNC_ONLY', { field: 'mode' });
    const mode = parseCopyMode(p.mode);
    const flag = (k: 'criticalVolume' | 'permitIfTargetOnline' | 'force') => (field(p, k, 'boolean', true) === true ? { [k]: true } : {});
    return { pairs, mode, ...flag('criticalVolume'), ...flag('permitIfTargetOnline'), ...flag('force') };
  },
  async execute(params, context) {
    const pprc = pprcOf(context);
    const { pairs: specs, mode, ...options } = params;
    // "rsExecuteTask returns once the pairs are established" (PP-37): establish resolves then; the copy goes on.
    const pairs = await each(specs, pairName, (x) => pprc.establish({ primary: x.primary, secondary: { volume: x.secondary, ...(x.ess !== undefined && { ess: x.ess }) }, mode, ...options }));
    return { pairs };
  },
  progress: (params, context) => pairsProgress(params.pairs, context),
};

function pairsKind(kind: 'pprc.suspend' | 'pprc.terminate'): OperationKind<PprcPairsParams> {
  const verb = kind === 'pprc.suspend' ? 'suspend' : 'terminate';
  return {
    kind,
    describe: (p) => `PPRC ${verb} (scheduled with the ${p.from} storage server) ${p.pairs.map(pairName).join(' ')}`,
    validate(raw) {
      const p = asObject(raw);
      noExtra(p, ['pairs', 'from'], `PPRC ${verb}`);
      const pairs = pairsOf(p, `PPRC ${verb}`);
      const from = field(p, 'from', 'string', true) ?? 'source';
      if (from !== 'source' && from !== 'target') throw new LunrigError('INVALID_ARGUMENT', `from must be 'source' or 'target', got '${String(from)}'`);
      return { pairs, from };
    },
    async execute(params, context) {
      const pprc = pprcOf(context);
      const volumeOf = (x: PprcPairSpec): string => {
        if (params.from === 'source') return x.primary;
        if (x.ess !== undefined && x.ess !== pprc.serial) {
          throw new LunrigError('INVALID_ARGUMENT', `${pairName(x)}: scheduled with the target storage server, the task runs on ESS ${x.ess}, not ${pprc.serial}`, { ess: x.ess });
        }
        return x.secondary;
      };
      const results = await each(params.pairs, pairName, async (x) => {
        const volume = volumeOf(x);
        return kind === 'pprc.suspend' ? pprc.suspend(volume, { from: params.from }) : pprc.terminate(volume, { from: params.from });
      });
      return kind === 'pprc.suspend' ? { suspended: results } : { terminated: results };
    },
    progress: (params, context) => pairsProgress(params.pairs, context),
  };
}

export const pprcSuspend = pairsKind('pprc.suspend');
export const pprcTerminate = pairsKind('pprc.terminate');

function lssKind(kind: 'pprc.freeze' | 'pprc.release'): OperationKind<PprcLssParams> {
  const verb = kind === 'pprc.freeze' ? 'freeze' : 'release';
  return {
    kind,
    describe: (p) => `PPRC ${verb} LSS ${p.lss.map(hex).join(' ')}`,
    validate: (raw) => ({ lss: lssList(asObject(raw), `PPRC ${verb}`) }),
    async execute(params, context) {
      const pprc = pprcOf(context);
      const pairs = kind === 'pprc.freeze' ? await pprc.freeze(params.lss) : await pprc.release(params.lss);
      return kind === 'pprc.freeze' ? { frozen: pairs } : { released: pairs };
    },
    progress: (params, context) => pairsWhere(context, (pair) => params.lss.includes(pair.primary.lss)),
  };
}

export const pprcFreeze = lssKind('pprc.freeze');
export const pprcRelease = lssKind('pprc.release');

/** Register the PPRC kinds on `kinds` (e.g. `withPprcKinds(defaultOperationKinds())`); the context then needs `pprc`. */
export function withPprcKinds(kinds: OperationKinds): OperationKinds {
  kinds.register(pprcPath).register(pprcEstablish).register(pprcSuspend).register(pprcTerminate).register(pprcFreeze).register(pprcRelease);
  return kinds;
}
