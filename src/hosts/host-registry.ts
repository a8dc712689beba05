/**
 * The array's hosts (initiators) and LUN masking: which host may see which
 * LUN. A host has a name and initiator identities:
 *
 * - `x509`: the CN (or subject) of a verified TLS client certificate;
 * - `psk`: a TLS pre-shared-key identity;
 * - `nbd-name`: a name the client gives in the export name, `NAME/LUN`
 *   (nbd://127.0.0.1:10809/host1/lun0 in libnbd and qemu URIs). Like an
 *   iSCSI initiator name it is a claim, not a proof: give a host only
 *   TLS identities where that matters.
 *
 * A host created without initiators gets `nbd-name` = its own name.
 * Masking is 'auto' by default: on as soon as one host exists, so a pool
 * without hosts stays open to every client as before. 'on' / 'off' force it.
 * State lives in `hosts.json` in the pool directory (store/persist.ts).
 */
import path from 'node:path';
import { LunrigError } from '../errors.js';
import type { TlsPeerIdentity } from '../nbd/tls-peer.js';
import { readJsonFile, writeJsonAtomic } from '../store/persist.js';
import { SerialQueue } from '../util/serial-queue.js';

export const HOSTS_FILE = 'hosts.json';

export type InitiatorKind = 'x509' | 'psk' | 'nbd-name';
export const INITIATOR_KINDS: readonly InitiatorKind[] = ['x509', 'psk', 'nbd-name'];

export interface Initiator {
  kind: InitiatorKind;
  name: string;
}

export interface HostInfo {
  name: string;
  initiators: Initiator[];
  /** LUN names this host may see. */
  luns: string[];
  /**
   * The unique id each mapped LUN had when it was mapped, where known: a LUN
   * deleted and re-created under the same name is a new LU and is not mapped.
   */
  lunIds?: Record<string, string>;
}

export type MaskingMode = 'auto' | 'on' | 'off';

export interface CreateHostRequest {
  name: string;
  initiators?: Initiator[];
  luns?: string[];
  /** Unique ids of `luns` (see HostInfo.lunIds). */
  lunIds?: Record<string, string>;
}

interface HostsFile {
  version: 1;
  masking: MaskingMode;
  hosts: HostInfo[];
}

const HOST_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;

export class HostRegistry {
  /** Per host: initiators, and mapped LUN name -> unique id ('' when not known). */
  private readonly hosts = new Map<string, { initiators: Initiator[]; luns: Map<string, string> }>();
  private mode: MaskingMode = 'auto';
  private readonly writes = new SerialQueue();

  /** `file` undefined: in memory only. */
  constructor(private readonly file?: string) {}

  static async open(dir: string): Promise<HostRegistry> {
    const reg = new HostRegistry(path.join(dir, HOSTS_FILE));
    const data = (await readJsonFile(reg.file!)) as HostsFile | undefined;
    if (data !== undefined) {
      if (typeof data !== 'object' || data === null || data.version !== 1 || !Array.isArray(data.hosts)) {
        throw new LunrigError('POOL_CORRUPT', `${reg.file} is not a hosts file`, { file: reg.file });
      }
      reg.mode = data.masking ?? 'auto';
      for (const h of data.hosts) reg.hosts.set(h.name, { initiators: h.initiators.map((i) => ({ ...i })), luns: new Map(h.luns.map((l) => [l, h.lunIds?.[l] ?? ''])) });
    }
    return reg;
  }

  get masking(): MaskingMode {
    return this.mode;
  }

  /** Whether clients see only what is mapped to their host. */
  get maskingEnabled(): boolean {
    return this.mode === 'on' || (this.mode === 'auto' && this.hosts.size > 0);
  }

  list(): HostInfo[] {
    return [...this.hosts.keys()].map((n) => this.get(n));
  }

  get(name: string): HostInfo {
    const h = this.hosts.get(name);
    if (!h) throw new LunrigError('HOST_NOT_FOUND', `no host '${name}'`, { host: name });
    const luns = [...h.luns.keys()].sort();
    const ids = luns.filter((l) => h.luns.get(l) !== '');
    return { name, initiators: h.initiators.map((i) => ({ ...i })), luns, ...(ids.length > 0 && { lunIds: Object.fromEntries(ids.map((l) => [l, h.luns.get(l)!])) }) };
  }

  has(name: string): boolean {
    return this.hosts.has(name);
  }

  async create(req: CreateHostRequest): Promise<HostInfo> {
    const name = req.name;
    if (typeof name !== 'string' || !HOST_NAME_RE.test(name)) {
      throw new LunrigError('INVALID_ARGUMENT', `invalid host name ${JSON.stringify(name)}: 1-64 characters A-Z a-z 0-9 . _ : - starting with a letter or digit`);
    }
    if (this.hosts.has(name)) throw new LunrigError('HOST_EXISTS', `host '${name}' exists`, { host: name });
    const initiators = (req.initiators ?? [{ kind: 'nbd-name', name }]).map(checkInitiator);
    for (const i of initiators) {
      const owner = this.ownerOf(i);
      if (owner !== undefined) throw new LunrigError('INVALID_ARGUMENT', `initiator ${i.kind}:${i.name} already belongs to host '${owner}'`, { host: owner });
    }
    this.hosts.set(name, { initiators, luns: new Map((req.luns ?? []).map((l) => [l, req.lunIds?.[l] ?? ''])) });
    await this.save();
    return this.get(name);
  }

  async delete(name: string): Promise<void> {
    this.get(name);
    this.hosts.delete(name);
    await this.save();
  }

  /** Let `host` see `lun` (idempotent); `uniqueId` ties the mapping to this LU, not to any later LUN of the name. */
  async map(host: string, lun: string, uniqueId?: string): Promise<HostInfo> {
    this.get(host);
    this.hosts.get(host)!.luns.set(lun, uniqueId ?? '');
    await this.save();
    return this.get(host);
  }

  async unmap(host: string, lun: string): Promise<HostInfo> {
    this.get(host);
    if (!this.hosts.get(host)!.luns.delete(lun)) throw new LunrigError('LUN_NOT_MAPPED', `LUN '${lun}' is not mapped to host '${host}'`, { host, lun });
    await this.save();
    return this.get(host);
  }

  /** Forget a deleted LUN in every mapping (with `uniqueId`: only mappings of that LU, or of no particular one). */
  async forgetLun(lun: string, uniqueId?: string): Promise<void> {
    let changed = false;
    for (const h of this.hosts.values()) {
      const mapped = h.luns.get(lun);
      if (mapped === undefined || (uniqueId !== undefined && mapped !== '' && mapped !== uniqueId)) continue;
      h.luns.delete(lun);
      changed = true;
    }
    if (changed) await this.save();
  }

  async setMasking(mode: MaskingMode): Promise<void> {
    if (mode !== 'auto' && mode !== 'on' && mode !== 'off') throw new LunrigError('INVALID_ARGUMENT', `masking must be auto, on or off, got ${JSON.stringify(mode)}`);
    this.mode = mode;
    await this.save();
  }

  /** The host a verified TLS peer belongs to. */
  byPeer(peer: TlsPeerIdentity | undefined): string | undefined {
    if (!peer || peer.kind === 'anonymous') return undefined;
    return this.ownerOf({ kind: peer.kind, name: peer.name });
  }

  /** The host a `NAME/` export-name prefix names. */
  byClaim(name: string): string | undefined {
    return this.ownerOf({ kind: 'nbd-name', name });
  }

  /** Whether `host` may see `lun` (always, with masking off); with `uniqueId`, only the LU that was mapped. */
  canSee(host: string | undefined, lun: string, uniqueId?: string): boolean {
    if (!this.maskingEnabled) return true;
    const id = host === undefined ? undefined : this.hosts.get(host)?.luns.get(lun);
    return id !== undefined && (id === '' || uniqueId === undefined || id === uniqueId);
  }

  private ownerOf(i: Initiator): string | undefined {
    for (const [name, h] of this.hosts) if (h.initiators.some((x) => x.kind === i.kind && x.name === i.name)) return name;
    return undefined;
  }

  private save(): Promise<void> {
    const file = this.file;
    if (!file) return Promise.resolve();
    const doc: HostsFile = { version: 1, masking: this.mode, hosts: this.list() };
    return this.writes.run(() => writeJsonAtomic(file, doc));
  }
}

function checkInitiator(i: Initiator): Initiator {
  if (!i || !INITIATOR_KINDS.includes(i.kind) || typeof i.name !== 'string' || i.name === '' || i.name.includes('/')) {
    throw new LunrigError('INVALID_ARGUMENT', `invalid initiator ${JSON.stringify(i)}: { kind: x509 | psk | nbd-name, name } (no '/')`);
  }
  return { kind: i.kind, name: i.name };
}
