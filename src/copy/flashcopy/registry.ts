/**
 * Where FlashCopy state survives a restart (spec §2.7, FX8): in the pool
 * directory, `flashcopy/relationships.json` lists the relationships (written
 * atomically through store/persist.ts) and each relationship's bitmaps live
 * beside it as `<id>.ckpt` + `<id>.journal` (store/bitmap-journal.ts).
 *
 * Same discipline as the pool's LUN files: bitmap files are created before
 * the list names the relationship, and the list forgets it before they are
 * removed, so files the list does not name are leftovers and go on open.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { LunrigError, fromSystemError } from '../../errors.js';
import { readJsonFile, removeStaleTempFiles, writeJsonAtomic } from '../../store/persist.js';
import { RELAXATIONS, type Relaxation } from './profile.js';

export const FLASHCOPY_DIR = 'flashcopy';
const REGISTRY_FILE = 'relationships.json';
const FORMAT = 'lunrig-flashcopy';
const VERSION = 1;

export type CopyMode = 'copy' | 'nocopy';

export interface VolumeRef {
  name: string;
  uniqueId: string;
}

export interface RelationshipRecord {
  id: string;
  source: VolumeRef;
  target: VolumeRef;
  mode: CopyMode;
  incremental: boolean;
  grainSize: number;
  /** Bytes covered: the source's size at T0 (the target's, if smaller under 'smaller-target'). */
  size: number;
  /** Background copy rate in bytes per second; null = unlimited, 0 = paused. */
  rate: number | null;
  permitIfTargetOnline: boolean;
  relax: Relaxation[];
  /** Consistency group name, when established as part of one. */
  group: string | null;
  /** The current T0 (the establish, or the last refresh), ISO 8601. */
  t0: string;
  establishedAt: string;
}

interface RegistryFile {
  format: typeof FORMAT;
  version: typeof VERSION;
  nextId: number;
  relationships: RelationshipRecord[];
}

export class Registry {
  private constructor(
    readonly dir: string,
    private file: RegistryFile,
  ) {}

  static async open(poolDir: string): Promise<Registry> {
    const dir = path.join(poolDir, FLASHCOPY_DIR);
    await fsp.mkdir(dir, { recursive: true }).catch((err: unknown) => {
      throw fromSystemError(err, `creating ${dir}`);
    });
    await removeStaleTempFiles(dir);
    const where = path.join(dir, REGISTRY_FILE);
    const raw = await readJsonFile(where);
    const file: RegistryFile = raw === undefined ? { format: FORMAT, version: VERSION, nextId: 1, relationships: [] } : validate(raw, where);
    const registry = new Registry(dir, file);
    await registry.removeLeftovers();
    return registry;
  }

  get records(): readonly RelationshipRecord[] {
    return this.file.relationships;
  }

  /** A new relationship id, never handed out before in this pool (persisted by the next save). */
  allocateId(): string {
    return `fc${this.file.nextId++}`;
  }

  /** Path prefix of a relationship's bitmap files. */
  bitmapBase(id: string): string {
    return path.join(this.dir, id);
  }

  /** Replace the list durably. */
  async save(relationships: readonly RelationshipRecord[]): Promise<void> {
    const next: RegistryFile = { ...this.file, relationships: [...relationships] };
    await writeJsonAtomic(path.join(this.dir, REGISTRY_FILE), next);
    this.file = next;
  }

  private async removeLeftovers(): Promise<void> {
    const known = new Set(this.file.relationships.map((r) => r.id));
    for (const name of await fsp.readdir(this.dir)) {
      const m = /^(.+)\.(journal|ckpt)$/.exec(name);
      if (m && !known.has(m[1]!)) await fsp.rm(path.join(this.dir, name), { force: true });
    }
  }
}

function validate(raw: unknown, where: string): RegistryFile {
  const corrupt = (why: string) => new LunrigError('POOL_CORRUPT', `${where} does not describe FlashCopy relationships (${why})`, { file: where });
  const f = raw as Partial<RegistryFile> | null;
  if (typeof f !== 'object' || f === null || f.format !== FORMAT || f.version !== VERSION) throw corrupt('format or version');
  if (!Number.isSafeInteger(f.nextId) || !Array.isArray(f.relationships)) throw corrupt('nextId or relationships');
  const ids = new Set<string>();
  for (const r of f.relationships) {
    const why = recordViolation(r);
    if (why) throw corrupt(why);
    if (ids.has(r.id)) throw corrupt(`relationship ${r.id} listed twice`);
    ids.add(r.id);
  }
  return f as RegistryFile;
}

function recordViolation(r: RelationshipRecord): string | undefined {
  const ref = (v: VolumeRef | undefined) => typeof v === 'object' && v !== null && typeof v.name === 'string' && typeof v.uniqueId === 'string';
  if (typeof r !== 'object' || r === null || typeof r.id !== 'string' || !/^[A-Za-z0-9_-]+$/.test(r.id)) return 'a relationship id';
  if (!ref(r.source) || !ref(r.target)) return `${r.id}: source or target`;
  if (r.mode !== 'copy' && r.mode !== 'nocopy') return `${r.id}: mode`;
  if (typeof r.incremental !== 'boolean' || typeof r.permitIfTargetOnline !== 'boolean') return `${r.id}: flags`;
  if (!Number.isSafeInteger(r.grainSize) || r.grainSize <= 0 || !Number.isSafeInteger(r.size) || r.size <= 0) return `${r.id}: grain size or size`;
  if (r.rate !== null && !(typeof r.rate === 'number' && r.rate >= 0)) return `${r.id}: rate`;
  if (!Array.isArray(r.relax) || r.relax.some((x) => !(RELAXATIONS as readonly string[]).includes(x))) return `${r.id}: relax`;
  if (r.group !== null && typeof r.group !== 'string') return `${r.id}: group`;
  if (typeof r.t0 !== 'string' || typeof r.establishedAt !== 'string') return `${r.id}: times`;
  return undefined;
}
