/**
 * lunrig's multipath layer (spec/multipath.md). Host side: MultipathDevice, a
 * Volume over N paths, with its profiles, selectors, groups, checks,
 * failback, quarantine and all-paths-down policy. Target side: TargetPort,
 * an NBD listener per port serving LUNs through a FaultSwitch, with fate
 * groups and scripted timelines.
 */
export { MultipathDevice, type MultipathDeviceOptions, type PathReport } from './multipath-device.js';
export { Path, type PathContext, type PathSpec, type PathTransition } from './path.js';
export { PATH_STATES, PROFILE_NAMES, STATE_NAMES, carriesIo, canTransition, stateName, type PathState, type ProfileName } from './path-states.js';
export { LATENCY_BUCKETS_MS, PathStats, type LatencyHistogram, type PathStatsSnapshot } from './path-stats.js';
export { aixProfile, dmProfile, hdlmProfile, resolveConfig, allSchedules } from './profiles.js';
export type { AixOptions, DmOptions, HdlmLbType, HdlmOptions, MultipathConfig, TimeoutPolicy } from './profiles.js';
export { createSelector, pickBest, type PathSelector, type SelectorSpec } from './selectors/index.js';
export { ExtendedSelector, FailOverSelector, LatencySelector, QueueLengthSelector, RoundRobinSelector, ServiceTimeSelector } from './selectors/index.js';
export { GROUPING_POLICIES, PathGroups, groupPaths, type Candidates, type GroupingPolicy, type PathGroup } from './path-groups.js';
export { ERROR_CLASSES, createClassifier, defaultClassifier, type ClassifierOptions, type ErrorClass, type ErrorClassifier } from './error-classifier.js';
export { HealthChecker, type CheckCommand, type CheckMode, type CheckSchedule, type HealthCheckHost } from './health-checker.js';
export { FailbackController, checkFailbackPolicy, failbackSchedules, type FailbackHost, type FailbackPolicy } from './failback.js';
export { QuarantineMonitor, validateIntermittentErrorMonitor, type QuarantinePolicy } from './quarantine.js';
export { NoPathQueue, type NoPathHooks, type NoPathPolicy } from './no-path-policy.js';
export { QueueDepthLimiter } from './queue-depth.js';
export { describeIo, isSequential, type IoDescriptor, type IoKind } from './io-descriptor.js';
export { summarizeError } from './events.js';
export type {
  ErrorSummary,
  GroupSwitchEvent,
  IoRetryEvent,
  MultipathEvent,
  MultipathEventMap,
  PathCause,
  PathStateEvent,
  PathsDownEvent,
  PathsRestoredEvent,
  QueueExhaustedEvent,
} from './events.js';
export { discoverDevices, type DiscoveredDevice } from './discovery.js';
export { transportOf, type PathTransport } from './transport.js';
export {
  FaultSwitch,
  type Fault,
  type FaultDecision,
  type FaultOps,
  type FaultSwitchEvents,
  type FaultSwitchOptions,
  type FaultSwitchStats,
  type FaultTarget,
  type LatencySpec,
  type LinkState,
  type RequestClass,
} from './fault-switch.js';
export { FaultyVolume } from './faulty-volume.js';
export { FateGroup } from './fate-group.js';
export { FaultTimeline, type TimelineStep } from './fault-timeline.js';
export { TargetPort, type TargetPortLun, type TargetPortOptions } from './target-port.js';
export { NbdPathVolume } from './nbd-path.js';
export { createLocalRig, type LocalRig, type LocalRigOptions, type LocalRigPath } from './local-rig.js';
export { DeviceReservations, RESERVE_POLICIES, checkReservationConfig, type ReservationConfig, type ReservePolicy } from './reservation-policy.js';
export { InitiatorPort, FAST_FAIL_SETTLE_MS, type LinkPhase, type LinkRecoveryPolicy } from './link-events.js';
export { FaultyExports } from './faulty-exports.js';
export type { ReservationEvent } from './events.js';
export { type NbdPathOptions } from './nbd-path.js';
export { PortManager, type AddPortRequest, type PortInfo, type PortManagerOptions, type TimelineInfo, type TimelineStepRequest } from './port-manager.js';
export { ClientPartition, Partition, ViosPartition, ViosSite, VhostAdapter, logicalUnitAddress, LV_BACKING_LIMIT, MAX_VIRTUAL_SLOTS, type BackingDevice, type VirtualTargetDevice } from './vios.js';
export { AvioDisk, AvioGuest, AVIO_MAX_IO, AVIO_MAX_LUNS, EMULATED_MAX_LUNS, MAX_FILE_BACKING_STORES, type AdapterMode, type AvioAttachOptions } from './avio.js';
