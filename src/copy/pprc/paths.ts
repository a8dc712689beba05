/**
 * Logical paths (spec §3.2, PP-01..03, PP-15): primary LSS -> (secondary ESS,
 * secondary LSS) over 1..8 physical links to that ESS. Paths are
 * unidirectional; a pair is connected while at least one link of its path is
 * up. Establishing an existing path either does nothing ('skip': "not
 * executed") or replaces it ('replace': "force removal of existing paths").
 */
import { LunrigError } from '../../errors.js';
import { parseLss } from '../../store/identity.js';
import { MAX_LINKS_PER_ESS, type LinkRecord } from './links.js';

export const MAX_PATHS_PER_LINK = 64;

export interface PathRecord {
  lss: number;
  to: string;
  targetLss: number;
  links: string[];
}

export interface EstablishPathRequest {
  lss: number | string;
  to: string;
  targetLss: number | string;
  links: readonly string[];
  ifExists?: 'skip' | 'replace';
}

export function samePath(a: Pick<PathRecord, 'lss' | 'to' | 'targetLss'>, b: Pick<PathRecord, 'lss' | 'to' | 'targetLss'>): boolean {
  return a.lss === b.lss && a.to === b.to && a.targetLss === b.targetLss;
}

/**
 * The path set after establishing `request` (or `notExecuted`), checked
 * against the links and the ESS limits; throws without changing anything.
 */
export function establishPath(
  paths: readonly PathRecord[],
  links: readonly LinkRecord[],
  request: EstablishPathRequest,
  limits: boolean,
): { paths: PathRecord[]; path: PathRecord; notExecuted: boolean } {
  const path: PathRecord = { lss: parseLss(request.lss), to: String(request.to), targetLss: parseLss(request.targetLss), links: [...new Set(request.links ?? [])] };
  if (path.links.length === 0) throw new LunrigError('INVALID_ARGUMENT', 'a path needs at least one link');
  if (path.links.length > MAX_LINKS_PER_ESS) throw new LunrigError('PPRC_TOO_MANY_LINKS', `a path uses at most ${MAX_LINKS_PER_ESS} links`);
  for (const id of path.links) {
    const link = links.find((l) => l.id === id);
    if (!link) throw new LunrigError('PPRC_LINK_NOT_FOUND', `no link '${id}'`, { link: id });
    if (link.to !== path.to) throw new LunrigError('INVALID_ARGUMENT', `link '${id}' goes to ESS ${link.to}, not ${path.to}`, { link: id });
  }
  const existing = paths.find((p) => samePath(p, path));
  if (existing && request.ifExists !== 'replace') {
    if (request.ifExists === 'skip') return { paths: [...paths], path: existing, notExecuted: true };
  }
  const next = paths.filter((p) => !samePath(p, path));
  if (limits) {
    for (const id of path.links) {
      const n = next.filter((p) => p.links.includes(id)).length;
      if (n >= MAX_PATHS_PER_LINK) throw new LunrigError('PPRC_TOO_MANY_PATHS', `link '${id}' already carries ${MAX_PATHS_PER_LINK} logical paths (PP-15)`, { link: id });
    }
  }
  // Without ifExists an existing path gets the union of its links and the new ones.
  const merged = existing && request.ifExists === undefined ? { ...path, links: [...new Set([...existing.links, ...path.links])] } : path;
  if (merged.links.length > MAX_LINKS_PER_ESS) throw new LunrigError('PPRC_TOO_MANY_LINKS', `a path uses at most ${MAX_LINKS_PER_ESS} links`);
  return { paths: [...next, merged], path: merged, notExecuted: false };
}
