/**
 * Path groups (spec §1.1, §5.2): I/O is spread only inside one group, the
 * active one; the others wait. AIX's flat list is one group ('multibus'),
 * HDLM's owner/non-owner classes are two ('owner'), dm's
 * path_grouping_policy maps to 'failover' (one path per group, highest
 * priority first) and 'group_by_prio'. When the active group has no online
 * path the best group that has one takes over (failover); going back to a
 * better group is the failback policy's call (failback.ts).
 */
import { LunrigError } from '../errors.js';
import type { Path } from './path.js';

export const GROUPING_POLICIES = ['multibus', 'failover', 'group_by_prio', 'owner', 'explicit'] as const;
export type GroupingPolicy = (typeof GROUPING_POLICIES)[number];

export interface PathGroup {
  key: string;
  /** 0 is the best group. */
  rank: number;
  /** In configuration order. */
  paths: Path[];
}

/** Groups, best first. `paths` must be in configuration order. */
export function groupPaths(paths: readonly Path[], policy: GroupingPolicy): PathGroup[] {
  const byKey = new Map<string, Path[]>();
  const add = (key: string, p: Path): void => {
    const list = byKey.get(key);
    if (list) list.push(p);
    else byKey.set(key, [p]);
  };
  switch (policy) {
    case 'multibus':
      for (const p of paths) add('all', p);
      break;
    case 'failover':
      // dm: a higher priority is better; equal priorities keep configuration order.
      for (const p of [...paths].sort((a, b) => b.priority - a.priority || a.order - b.order)) add(p.name, p);
      break;
    case 'group_by_prio':
      for (const p of [...paths].sort((a, b) => b.priority - a.priority || a.order - b.order)) add(`prio=${p.priority}`, p);
      for (const list of byKey.values()) list.sort((a, b) => a.order - b.order);
      break;
    case 'owner':
      for (const p of paths) if (p.owner) add('owner', p);
      for (const p of paths) if (!p.owner) add('non-owner', p);
      break;
    case 'explicit':
      for (const p of paths) add(p.group ?? 'default', p);
      break;
    default:
      throw new LunrigError('INVALID_CONFIG', `unknown grouping policy '${String(policy)}' (known: multibus, failover, group_by_prio, owner, explicit)`);
  }
  return [...byKey].map(([key, list], rank) => ({ key, rank, paths: list }));
}

export interface Candidates {
  /** The group the candidates came from when they are online paths; undefined for the last-resort tiers. */
  group: PathGroup | undefined;
  paths: Path[];
}

export class PathGroups {
  private groups: PathGroup[] = [];
  private activeKey: string | undefined;

  constructor(readonly policy: GroupingPolicy) {}

  /** Recompute after paths were added or removed; the active group is kept when it still exists. */
  rebuild(paths: readonly Path[]): void {
    this.groups = groupPaths(paths, this.policy);
    if (this.activeKey !== undefined && !this.groups.some((g) => g.key === this.activeKey)) this.activeKey = undefined;
  }

  get list(): readonly PathGroup[] {
    return this.groups;
  }

  get active(): PathGroup | undefined {
    return this.groups.find((g) => g.key === this.activeKey);
  }

  setActive(group: PathGroup): void {
    this.activeKey = group.key;
  }

  groupOf(path: Path): PathGroup | undefined {
    return this.groups.find((g) => g.paths.includes(path));
  }

  /** The best group with an online path. */
  bestUsable(): PathGroup | undefined {
    return this.groups.find((g) => g.paths.some((p) => p.state === 'online'));
  }

  /**
   * Where the next I/O may go: the active group's online paths; else the best
   * group with online paths; else Online(E) paths; else standby paths (best
   * group first) as a last resort. `exclude` holds paths this I/O already tried.
   */
  candidates(exclude: ReadonlySet<Path>): Candidates {
    const online = (g: PathGroup): Path[] => g.paths.filter((p) => p.state === 'online' && !exclude.has(p));
    const active = this.active;
    if (active) {
      const paths = online(active);
      if (paths.length > 0) return { group: active, paths };
    }
    for (const g of this.groups) {
      const paths = online(g);
      if (paths.length > 0) return { group: g, paths };
    }
    for (const state of ['online_degraded', 'standby'] as const) {
      for (const g of this.groups) {
        const paths = g.paths.filter((p) => p.state === state && !exclude.has(p));
        if (paths.length > 0) return { group: undefined, paths };
      }
    }
    return { group: undefined, paths: [] };
  }
}
