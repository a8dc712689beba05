/**
 * Product profiles (spec §1.8, §5.1 item 6): AIX MPIO, HDLM and dm-multipath
 * settings in each product's own names and units (AIX and dm seconds, HDLM
 * minutes), turned into one MultipathConfig in milliseconds. Defaults are the
 * products' own; where a source disagrees or is only background knowledge
 * ([K] in the spec) the comment says so.
 */
import { LunrigError } from '../errors.js';
import { defaultClassifier, type ErrorClassifier } from './error-classifier.js';
import { checkFailbackPolicy, failbackSchedules, type FailbackPolicy } from './failback.js';
import type { CheckSchedule } from './health-checker.js';
import type { NoPathPolicy } from './no-path-policy.js';
import type { GroupingPolicy } from './path-groups.js';
import type { ProfileName } from './path-states.js';
import { validateIntermittentErrorMonitor, type QuarantinePolicy } from './quarantine.js';
import type { SelectorSpec } from './selectors/index.js';
import { checkReservationConfig, type ReservationConfig, type ReservePolicy } from './reservation-policy.js';
import type { LinkRecoveryPolicy } from './link-events.js';

export type TimeoutPolicy = 'fail_path' | 'disable_path' | 'retry_path';

/** Everything a MultipathDevice needs to behave like one product; plain data, times in ms. */
export interface MultipathConfig {
  /** Whose state names the device reports. */
  profile: ProfileName;
  selector: SelectorSpec;
  grouping: GroupingPolicy;
  failback: FailbackPolicy;
  /** Health-check schedules besides the failback policy's own (see failback.ts). */
  checks: CheckSchedule[];
  noPath: NoPathPolicy;
  /** HDLM: the last usable path that fails goes Online(E) and keeps carrying I/O ('degrade'). */
  lastPath: 'degrade' | 'fail';
  /** HDLM: refuse `offline` on the last Online path. */
  protectLastPath: boolean;
  quarantine: QuarantinePolicy | undefined;
  /** Outstanding I/Os on the whole device (AIX queue_depth); undefined: no cap. */
  queueDepth: number | undefined;
  /** Outstanding I/Os per path (Linux, HP-UX); undefined: no cap. */
  pathQueueDepth: number | undefined;
  /** Per-request timeout on a path (AIX rw_timeout, Linux sd timeout); undefined: none. */
  requestTimeoutMs: number | undefined;
  /** AIX timeout_policy: what a timed-out I/O does to its path. */
  timeoutPolicy: TimeoutPolicy;
  /** Same-path retries of retry-class errors (BUSY) before the error goes to the caller. */
  retryLimit: number;
  /** Allowed path priorities. */
  priorityRange: readonly [number, number];
  classifier: ErrorClassifier;
  /** reserve_policy (AIX), rsv level (HDLM), reservation_key (dm); absent: no_reserve. */
  reservation?: ReservationConfig;
  /** fc_err_recov of the initiator ports (AIX fscsi, MP-18); absent: delayed_fail. */
  linkRecovery?: LinkRecoveryPolicy;
}

/** Every schedule the device runs: the profile's checks plus the failback policy's. */
export function allSchedules(config: MultipathConfig): CheckSchedule[] {
  const command = config.checks[0]?.command ?? 'tur';
  return [...config.checks, ...failbackSchedules(config.failback, command)];
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;

// --- AIX MPIO (default PCM) --------------------------------------------------

export interface AixOptions {
  /** Default fail_over [IBM-PCM]. */
  algorithm?: 'fail_over' | 'round_robin' | 'shortest_queue';
  /** Seconds, 0 = off. The ODM default varies (0, 10, 60); 60 is IBM's recommendation [DS3500-RB]. */
  hcheck_interval?: number;
  /** Default nonactive [K]. */
  hcheck_mode?: 'enabled' | 'failed' | 'nonactive';
  /** Default test_unit_rdy [K]. */
  hcheck_cmd?: 'test_unit_rdy' | 'inquiry';
  /** Per hdisk. vSCSI client: default 3, range 1-256 [IBM-VQD]; FC: vendor ODM, 20 here [K]. */
  queue_depth?: number;
  /** Seconds. FC typically 30, vSCSI client 45 [K]. */
  rw_timeout?: number;
  /** Default fail_path (IBM best practice) [K]. */
  timeout_policy?: TimeoutPolicy;
  /** The client adapter kind, for the queue_depth and rw_timeout defaults and range. */
  adapter?: 'fc' | 'vscsi';
  /** Default no_reserve here (vendor ODMs differ: single_path, PR_exclusive, no_reserve) [IBM-MPIO]. */
  reserve_policy?: ReservePolicy;
  /** The host's key for PR_exclusive / PR_shared (hex or number). */
  PR_key_value?: string | number;
  /** fscsi fc_err_recov: delayed_fail (default) or fast_fail, about 15 s after a link event [IBM-FF]. */
  fc_err_recov?: 'delayed_fail' | 'fast_fail';
}

export function aixProfile(o: AixOptions = {}): MultipathConfig {
  const adapter = o.adapter ?? 'fc';
  const algorithm = o.algorithm ?? 'fail_over';
  const hcheck = o.hcheck_interval ?? 60;
  const queueDepth = o.queue_depth ?? (adapter === 'vscsi' ? 3 : 20);
  const rwTimeout = o.rw_timeout ?? (adapter === 'vscsi' ? 45 : 30);
  nonNegative('hcheck_interval', hcheck);
  positive('rw_timeout', rwTimeout);
  if (adapter === 'vscsi' && !(Number.isSafeInteger(queueDepth) && queueDepth >= 1 && queueDepth <= 256)) {
    throw new LunrigError('INVALID_CONFIG', `queue_depth ${queueDepth} is outside the vSCSI client range 1-256`, { queue_depth: queueDepth });
  }
  if (!(Number.isSafeInteger(queueDepth) && queueDepth >= 1)) throw new LunrigError('INVALID_CONFIG', `queue_depth must be a positive integer, got ${queueDepth}`);
  const selector: SelectorSpec =
    algorithm === 'fail_over'
      ? { kind: 'fail_over' }
      : algorithm === 'round_robin'
        ? { kind: 'round_robin', weights: 'priority' }
        : algorithm === 'shortest_queue'
          ? { kind: 'queue_length' }
          : invalid('algorithm', algorithm);
  if (o.reserve_policy !== undefined) checkReservationConfig({ policy: o.reserve_policy, ...(o.PR_key_value !== undefined && { key: o.PR_key_value }) }, selector.kind);
  const mode = o.hcheck_mode ?? 'nonactive';
  if (!['enabled', 'failed', 'nonactive'].includes(mode)) invalid('hcheck_mode', mode);
  return {
    profile: 'aix',
    selector,
    grouping: 'multibus',
    // fail_over re-selects per I/O, so a recovered better path takes the next I/O.
    failback: { mode: 'immediate' },
    checks: hcheck > 0 ? [{ name: 'hcheck', intervalMs: hcheck * SECOND, mode, command: o.hcheck_cmd === 'inquiry' ? 'inquiry' : 'tur', recover: true }] : [],
    noPath: { mode: 'fail' },
    lastPath: 'fail',
    protectLastPath: false,
    quarantine: undefined,
    queueDepth,
    pathQueueDepth: undefined,
    requestTimeoutMs: rwTimeout * SECOND,
    timeoutPolicy: o.timeout_policy ?? 'fail_path',
    retryLimit: 3,
    priorityRange: [1, 255],
    classifier: defaultClassifier,
    ...(o.reserve_policy !== undefined && { reservation: { policy: o.reserve_policy, ...(o.PR_key_value !== undefined && { key: o.PR_key_value }) } }),
    ...(o.fc_err_recov !== undefined && { linkRecovery: { mode: o.fc_err_recov } }),
  };
}

// --- HDLM (dlnkmgr set) -------------------------------------------------------

export type HdlmLbType = 'rr' | 'exrr' | 'lio' | 'exlio' | 'lbk' | 'exlbk';

export interface HdlmOptions {
  /** -lb on|off, default on [HDLM-DEF]. Off: one path carries the I/O. */
  lb?: boolean;
  /** -lbtype, default exlio [HDLM-DEF]. */
  lbtype?: HdlmLbType;
  /** -lbpathusetimes: I/Os per path before the base algorithms choose again (default 1 [K]). */
  lbpathusetimes?: number;
  /** -expathusetimes: longest sequential run on one path (default 100 [K]). */
  expathusetimes?: number;
  /** -exrndpathusetimes: random I/Os per path before choosing again (default 1 [K]). */
  exrndpathusetimes?: number;
  /** Path health checking, minutes 1-1440: default on, 30 [HDLM-DEF]. */
  pchk?: { on?: boolean; intvl?: number };
  /** Auto failback, minutes 1-1440: default on, 1 [HDLM-DEF] (Auto Path v04.02: off). */
  afb?: { on?: boolean; intvl?: number };
  /** Intermittent error monitor: default off, 30 min (1-1440), 3 errors (1-99) [HDLM-WIN66]. */
  iem?: { on?: boolean; intvl?: number; iemnum?: number };
  /** The hdisk's queue_depth (vendor ODM); undefined: no cap. */
  queue_depth?: number;
  /** The hdisk's rw_timeout in seconds (vendor ODM, 30 here [K]). */
  rw_timeout?: number;
  /** dlnkmgr set -rsv on <level>: 0 ignores reservations (no_reserve), 2 is persistent reservation (PR_exclusive) with `key` [HDLM-JP]. Default 0 here. */
  rsv?: { level: 0 | 2; key?: string | number };
}

export function hdlmProfile(o: HdlmOptions = {}): MultipathConfig {
  const pchk = { on: true, intvl: 30, ...o.pchk };
  const afb = { on: true, intvl: 1, ...o.afb };
  const iem = { on: false, intvl: 30, iemnum: 3, ...o.iem };
  for (const [name, v] of [['pchk intvl', pchk.intvl], ['afb intvl', afb.intvl], ['iem intvl', iem.intvl]] as const) inRange(name, v, 1, 1440);
  inRange('iemnum', iem.iemnum, 1, 99);
  if (iem.on && !afb.on) throw new LunrigError('INVALID_CONFIG', 'intermittent error monitoring can be set only when auto failback is on');
  if (iem.on) validateIntermittentErrorMonitor(afb.intvl, iem.intvl, iem.iemnum);
  const rwTimeout = o.rw_timeout ?? 30;
  positive('rw_timeout', rwTimeout);
  return {
    profile: 'hdlm',
    selector: hdlmSelector(o),
    grouping: 'owner',
    // HDLM picks owner paths first on every I/O, so a recovered owner path takes the I/O back at once.
    failback: afb.on ? { mode: 'interval', intervalMs: afb.intvl * MINUTE } : { mode: 'immediate' },
    checks: pchk.on ? [{ name: 'pchk', intervalMs: pchk.intvl * MINUTE, mode: 'online', command: 'tur', recover: false }] : [],
    noPath: { mode: 'fail' },
    lastPath: 'degrade',
    protectLastPath: true,
    quarantine: iem.on ? { windowMs: iem.intvl * MINUTE, errorCount: iem.iemnum, startOn: 'auto-failback' } : undefined,
    queueDepth: o.queue_depth,
    pathQueueDepth: undefined,
    requestTimeoutMs: rwTimeout * SECOND,
    timeoutPolicy: 'fail_path',
    retryLimit: 3,
    priorityRange: [0, Number.MAX_SAFE_INTEGER],
    classifier: defaultClassifier,
    ...(o.rsv && { reservation: o.rsv.level === 2 ? { policy: 'PR_exclusive', ...(o.rsv.key !== undefined && { key: o.rsv.key }) } : { policy: 'no_reserve' } }),
  };
}

function hdlmSelector(o: HdlmOptions): SelectorSpec {
  if (o.lb === false) return { kind: 'fail_over' };
  const lbtype = o.lbtype ?? 'exlio';
  const per = o.lbpathusetimes ?? 1;
  const extended = lbtype.startsWith('ex');
  const base = extended ? lbtype.slice(2) : lbtype;
  const spec: SelectorSpec =
    base === 'rr'
      ? { kind: 'round_robin' }
      : base === 'lio'
        ? { kind: 'queue_length' }
        : base === 'lbk'
          ? { kind: 'service_time', useThroughput: false }
          : invalid('lbtype', lbtype);
  if (extended) return { ...spec, extended: { sequentialLimit: o.expathusetimes ?? 100, randomRepeat: o.exrndpathusetimes ?? 1 } };
  // The base algorithms choose again every -lbpathusetimes I/Os, sequential or not.
  return per > 1 ? { ...spec, extended: { sequentialLimit: per, randomRepeat: per } } : spec;
}

// --- dm-multipath (multipath.conf) -------------------------------------------

export interface DmOptions {
  /** Default failover (upstream) [MPT]. */
  path_grouping_policy?: 'failover' | 'multibus' | 'group_by_prio';
  /** Default 'service-time 0' [MPT]. */
  path_selector?: 'round-robin 0' | 'queue-length 0' | 'service-time 0' | 'historical-service-time 0';
  /** Default 1 [MPT]. */
  rr_min_io_rq?: number;
  /** Default uniform [MPT]. */
  rr_weight?: 'uniform' | 'priorities';
  /** immediate | manual (default) | seconds [MPT]. */
  failback?: 'immediate' | 'manual' | number;
  /** fail (default) | queue | polling intervals to queue [MPT]. */
  no_path_retry?: 'fail' | 'queue' | number;
  /** Seconds, default 5 [MPT]. */
  polling_interval?: number;
  /** Every checker here probes with a read of block 0 (tur). */
  path_checker?: 'tur' | 'directio' | 'readsector0';
  /** A path failing this often within forget_rate checks is kept out for recovery_time seconds (lunrig's reading of san_path_err_*). */
  san_path_err_threshold?: number;
  san_path_err_forget_rate?: number;
  san_path_err_recovery_time?: number;
  /** Per-path queue depth; undefined: no cap. */
  queue_depth?: number;
  /** Per-request timeout in seconds (the SCSI device timeout, 30 on Linux [K]). */
  timeout?: number;
  /** multipath.conf reservation_key: the key is registered on every path (new ones too, as multipathd does) and the device reserves Write Exclusive - Registrants Only on open, as `mpathpersist --out --reserve` would. */
  reservation_key?: string | number;
}

export function dmProfile(o: DmOptions = {}): MultipathConfig {
  const polling = o.polling_interval ?? 5;
  positive('polling_interval', polling);
  const timeout = o.timeout ?? 30;
  positive('timeout', timeout);
  const failback: FailbackPolicy =
    o.failback === undefined || o.failback === 'manual'
      ? { mode: 'manual' }
      : o.failback === 'immediate'
        ? { mode: 'immediate' }
        : { mode: 'deferred', delayMs: o.failback * SECOND };
  checkFailbackPolicy(failback);
  const npr = o.no_path_retry ?? 'fail';
  const noPath: NoPathPolicy = npr === 'fail' ? { mode: 'fail' } : npr === 'queue' ? { mode: 'queue' } : { mode: 'queue-checks', checks: npr };
  const threshold = o.san_path_err_threshold;
  return {
    profile: 'dm',
    selector: dmSelector(o),
    grouping: o.path_grouping_policy ?? 'failover',
    failback,
    checks: [{ name: 'polling', intervalMs: polling * SECOND, mode: 'all', command: 'tur', recover: true, countsForNoPath: true }],
    noPath,
    lastPath: 'fail',
    protectLastPath: false,
    quarantine:
      threshold === undefined
        ? undefined
        : {
            windowMs: (o.san_path_err_forget_rate ?? 100) * polling * SECOND,
            errorCount: threshold,
            startOn: 'any-failure',
            releaseAfterMs: (o.san_path_err_recovery_time ?? 300) * SECOND,
          },
    queueDepth: undefined,
    pathQueueDepth: o.queue_depth,
    requestTimeoutMs: timeout * SECOND,
    timeoutPolicy: 'fail_path',
    retryLimit: 3,
    priorityRange: [0, Number.MAX_SAFE_INTEGER],
    classifier: defaultClassifier,
    ...(o.reservation_key !== undefined && { reservation: { policy: 'PR_exclusive', key: o.reservation_key } }),
  };
}

function dmSelector(o: DmOptions): SelectorSpec {
  const sel = o.path_selector ?? 'service-time 0';
  switch (sel) {
    case 'round-robin 0':
      return { kind: 'round_robin', repeat: o.rr_min_io_rq ?? 1, repeatByPriority: o.rr_weight === 'priorities' };
    case 'queue-length 0':
      return { kind: 'queue_length' };
    case 'service-time 0':
      return { kind: 'service_time' };
    case 'historical-service-time 0':
      return { kind: 'latency' };
    default:
      return invalid('path_selector', sel);
  }
}

/** A profile by name with its defaults, or a config as given. */
export function resolveConfig(config: ProfileName | MultipathConfig | undefined): MultipathConfig {
  if (config === undefined || config === 'aix') return aixProfile();
  if (config === 'hdlm') return hdlmProfile();
  if (config === 'dm') return dmProfile();
  if (typeof config === 'string') return invalid('profile', config);
  return config;
}

function invalid(setting: string, value: unknown): never {
  throw new LunrigError('INVALID_CONFIG', `unknown ${setting} '${String(value)}'`, { setting, value });
}

function inRange(setting: string, v: number, min: number, max: number): void {
  if (!Number.isSafeInteger(v) || v < min || v > max) {
    throw new LunrigError('INVALID_CONFIG', `${setting} must be an integer in ${min}-${max}, got ${v}`, { setting, value: v });
  }
}

function positive(setting: string, v: number): void {
  if (!(v > 0) || !Number.isFinite(v)) throw new LunrigError('INVALID_CONFIG', `${setting} must be positive, got ${v}`, { setting, value: v });
}

function nonNegative(setting: string, v: number): void {
  if (!(v >= 0) || !Number.isFinite(v)) throw new LunrigError('INVALID_CONFIG', `${setting} must be >= 0, got ${v}`, { setting, value: v });
}
