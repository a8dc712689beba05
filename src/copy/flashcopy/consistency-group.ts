/**
 * FlashCopy consistency groups ([E]: the document has none, spec §2.8; it
 * only runs multi-pair tasks in parallel). lunrig takes every pair's T0 at
 * one instant (layer-stack.ts holds all the volumes at once), validates every
 * pair before establishing any (all or nothing), and withdraws a group as one.
 * In the strict profile a group's sources share one LSS and its targets one
 * (multiple selection mode); 'cross-lss' lifts that.
 */
import { LunrigError } from '../../errors.js';
import type { RelationshipInfo } from './relationship.js';

export interface GroupInfo {
  name: string;
  /** The group's one T0. */
  t0: string;
  relationships: RelationshipInfo[];
}

const GROUP_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function validateGroupName(name: string): string {
  if (!GROUP_NAME_RE.test(name)) {
    throw new LunrigError('INVALID_ARGUMENT', `invalid consistency group name ${JSON.stringify(name)}: use 1-64 characters A-Z a-z 0-9 . _ - starting with a letter or digit`);
  }
  return name;
}

/** Groups of the given relationships, by name, members in id order. */
export function groupsOf(relationships: readonly RelationshipInfo[]): GroupInfo[] {
  const byName = new Map<string, RelationshipInfo[]>();
  for (const r of relationships) if (r.group !== null) byName.set(r.group, [...(byName.get(r.group) ?? []), r]);
  return [...byName.entries()].map(([name, members]) => ({ name, t0: members[0]!.t0, relationships: members }));
}
