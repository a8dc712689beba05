/**
 * reserve_policy on the host side (spec §1.7, MP-31..MP-38): what the
 * multipath device does with its paths' reservation commands
 * (transport.ts `reservations`).
 *
 * - no_reserve: nothing (dual VIOS, HACMP, MP-33).
 * - single_path: SCSI-2 RESERVE through one path when the device opens.
 *   Round robin cannot go with it (every other path would conflict), so the
 *   config is refused (MP-31). When I/O must move to another path, the
 *   driver breaks the reserve with a LUN reset (BDR) through the new path
 *   and reserves again there, and logs the reset (MP-32).
 * - PR_exclusive / PR_shared: SPC-3 persistent reservations. The host's key
 *   is registered on every path (each is its own I_T nexus), then reserved
 *   with the policy's type; a path added later is registered before it
 *   carries I/O, as dm's mpathpersist does (MP-38). PR_exclusive defaults to
 *   Write Exclusive - Registrants Only (5h), PR_shared to Write Exclusive -
 *   All Registrants (7h): the sources name no SPC type, both are settable.
 */
import { LunrigError } from '../errors.js';
import { parseKey, parsePrType, type NexusCommands, type PrType, type ReservationKey } from '../hosts/reservation-types.js';
import type { Path } from './path.js';
import { transportOf } from './transport.js';

export type ReservePolicy = 'no_reserve' | 'single_path' | 'PR_exclusive' | 'PR_shared';
export const RESERVE_POLICIES: readonly ReservePolicy[] = ['no_reserve', 'single_path', 'PR_exclusive', 'PR_shared'];

export interface ReservationConfig {
  policy: ReservePolicy;
  /** PR_key_value / reservation_key: required for the PR policies. */
  key?: string | number;
  /** The SPC type to reserve with (default: 5h for PR_exclusive, 7h for PR_shared). */
  prType?: PrType;
}

export interface ReservationHost {
  readonly name: string;
  paths(): readonly Path[];
  onAction(path: Path, action: 'reserve' | 'reset' | 'register' | 'release'): void;
}

/** Refuse combinations the products refuse (MP-31: single_path with anything but fail_over). */
export function checkReservationConfig(cfg: ReservationConfig | undefined, selectorKind: string): void {
  if (!cfg) return;
  if (!RESERVE_POLICIES.includes(cfg.policy)) throw new LunrigError('INVALID_CONFIG', `unknown reserve_policy '${String(cfg.policy)}'`);
  if (cfg.policy === 'single_path' && selectorKind !== 'fail_over') {
    throw new LunrigError('INVALID_CONFIG', `reserve_policy=single_path cannot be combined with ${selectorKind}: commands on any other path get RESERVATION CONFLICT (use fail_over)`, {
      reserve_policy: cfg.policy,
      algorithm: selectorKind,
    });
  }
  if ((cfg.policy === 'PR_exclusive' || cfg.policy === 'PR_shared') && cfg.key === undefined) {
    throw new LunrigError('INVALID_CONFIG', `reserve_policy=${cfg.policy} needs PR_key_value (a key unique to this host)`);
  }
  if (cfg.key !== undefined && parseKey(cfg.key) === '0000000000000000') throw new LunrigError('INVALID_CONFIG', 'PR_key_value must not be 0');
  if (cfg.prType !== undefined) parsePrType(cfg.prType);
}

export class DeviceReservations {
  readonly policy: ReservePolicy;
  private readonly key: ReservationKey | undefined;
  private readonly prType: PrType;
  private opened = false;
  /** single_path: the path holding the SCSI-2 reserve. */
  private holder: Path | undefined;
  /** PR: paths whose nexus carries our key. */
  private readonly registered = new WeakSet<Path>();
  private moving: Promise<void> | undefined;

  constructor(
    cfg: ReservationConfig | undefined,
    private readonly host: ReservationHost,
  ) {
    this.policy = cfg?.policy ?? 'no_reserve';
    this.key = cfg?.key === undefined ? undefined : parseKey(cfg.key);
    this.prType = cfg?.prType ?? (this.policy === 'PR_shared' ? 'write_exclusive_all_registrants' : 'write_exclusive_registrants_only');
  }

  get isOpen(): boolean {
    return this.opened;
  }

  /** The path holding a single_path reserve. */
  get reservingPath(): Path | undefined {
    return this.holder;
  }

  /** Apply the policy: reserve through `first` (single_path), or register everywhere and reserve (PR). */
  async open(first: Path | undefined): Promise<void> {
    if (this.opened || this.policy === 'no_reserve') {
      this.opened = true;
      return;
    }
    if (this.policy === 'single_path') {
      if (!first) throw new LunrigError('MP_PATH_NOT_FOUND', `${this.host.name}: no usable path to reserve through`);
      await commandsOf(first).reserve();
      this.holder = first;
      this.host.onAction(first, 'reserve');
    } else {
      let via: Path | undefined;
      for (const p of this.host.paths()) {
        try {
          await this.register(p);
          via ??= p;
        } catch (err) {
          // A path that cannot be reached now is registered when it carries I/O again.
          if (!(err instanceof LunrigError) || err.code === 'RESERVATION_CONFLICT' || err.code === 'INVALID_ARGUMENT') throw err;
        }
      }
      if (!via) throw new LunrigError('MP_PATH_NOT_FOUND', `${this.host.name}: no path could register the reservation key`);
      await commandsOf(via).persistentReserveOut({ action: 'reserve', key: this.key, type: this.prType });
      this.host.onAction(via, 'reserve');
    }
    this.opened = true;
  }

  /**
   * Before an I/O goes down `path`: single_path moves the reserve to it
   * (BDR + RESERVE, MP-32); PR registers the key on a path that lacks it
   * (MP-38). Concurrent callers share one move.
   */
  beforeIo(path: Path): Promise<void> | undefined {
    if (!this.opened || this.policy === 'no_reserve') return undefined;
    if (this.policy === 'single_path') return this.holder === path ? undefined : this.takeReserve(path);
    return this.registered.has(path) ? undefined : this.register(path);
  }

  private async takeReserve(path: Path): Promise<void> {
    while (this.holder !== path) {
      if (this.moving) {
        await this.moving;
        continue;
      }
      this.moving = this.moveReserve(path).finally(() => (this.moving = undefined));
      await this.moving;
    }
  }

  /** A path was added to an open device: PR policies register it at once (MP-38). */
  async onPathAdded(path: Path): Promise<void> {
    if (this.opened && (this.policy === 'PR_exclusive' || this.policy === 'PR_shared')) await this.register(path);
  }

  /** Give the reservation up (device close). */
  async release(): Promise<void> {
    if (!this.opened) return;
    this.opened = false;
    if (this.policy === 'single_path' && this.holder) {
      const h = this.holder;
      this.holder = undefined;
      await commandsOf(h).release();
      this.host.onAction(h, 'release');
    } else if (this.policy === 'PR_exclusive' || this.policy === 'PR_shared') {
      const via = this.host.paths().find((p) => this.registered.has(p));
      if (via) {
        await commandsOf(via).persistentReserveOut({ action: 'release', key: this.key, type: this.prType });
        this.host.onAction(via, 'release');
      }
    }
  }

  private async moveReserve(path: Path): Promise<void> {
    const cmds = commandsOf(path);
    // The old path is gone or out of use: break its reserve (bus device reset) and take it here.
    await cmds.lunReset();
    this.host.onAction(path, 'reset');
    this.holder = undefined;
    await cmds.reserve();
    this.holder = path;
    this.host.onAction(path, 'reserve');
  }

  private async register(path: Path): Promise<void> {
    await commandsOf(path).persistentReserveOut({ action: 'register_and_ignore', serviceKey: this.key });
    this.registered.add(path);
    this.host.onAction(path, 'register');
  }
}

function commandsOf(path: Path): NexusCommands {
  const cmds = transportOf(path.volume).reservations;
  if (!cmds) throw new LunrigError('NOT_SUPPORTED', `path ${path.name} cannot send reservation commands (give its Volume a 'reservations' ability)`, { path: path.name });
  return cmds;
}
