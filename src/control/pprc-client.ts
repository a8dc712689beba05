/**
 * The control API's PPRC endpoints (routes-pprc.ts) over ControlClient.request:
 * errors come back as the server's LunrigError. Results are the manager's
 * JSON, typed loosely where the core owns the shape.
 */
import type { ControlClient } from './client.js';
import type { RemoteEssInfo, RemoteTlsConfig } from '../copy/pprc/remote/remote-registry.js';
import type { SecondaryVolumeFacts } from '../copy/pprc/secondary-ess.js';
import type { NbdTarget } from '../nbd/client.js';

export type Json = Record<string, unknown>;
export type CopyMode = 'copy-entire' | 'no-copy' | 'out-of-sync-only';
export type From = 'source' | 'target';

/** A pair's query as the CLI reads it; the core adds more fields. */
export interface PprcQuery extends Json {
  role: string;
  suspended: boolean;
  state: string;
  oosTracks: number;
  totalTracks: number;
}

export interface EstablishPprcRequest {
  primary: string;
  secondary: { ess?: string; volume: string };
  mode?: CopyMode;
  criticalVolume?: boolean;
  permitIfTargetOnline?: boolean;
  force?: boolean;
}

type Request = <T>(method: string, path: string, body?: unknown) => Promise<T>;

const vol = (name: string) => `/v1/pprc/pairs/${encodeURIComponent(name)}`;

export class PprcClient {
  private readonly request: Request;

  constructor(client: ControlClient) {
    this.request = client.request.bind(client);
  }

  overview(): Promise<Json> {
    return this.request('GET', '/v1/pprc');
  }

  // ESSs
  listEss(): Promise<{ serial: string; remotes: RemoteEssInfo[] }> {
    return this.request('GET', '/v1/pprc/ess');
  }

  addEss(body: { controlUrl: string; nbd: string | NbdTarget; serial?: string; tls?: RemoteTlsConfig }): Promise<RemoteEssInfo> {
    return this.request('POST', '/v1/pprc/ess', body);
  }

  // links
  async listLinks(): Promise<Json[]> {
    return (await this.request<{ links: Json[] }>('GET', '/v1/pprc/links')).links;
  }

  addLink(body: { id?: string; to: string; distanceKm?: number }): Promise<Json> {
    return this.request('POST', '/v1/pprc/links', body);
  }

  removeLink(id: string): Promise<Json> {
    return this.request('DELETE', `/v1/pprc/links/${encodeURIComponent(id)}`);
  }

  setLinkFault(id: string, fault: { down?: boolean; latencyMs?: number; bandwidth?: number | null }): Promise<Json> {
    return this.request('PUT', `/v1/pprc/links/${encodeURIComponent(id)}/fault`, fault);
  }

  clearLinkFault(id: string): Promise<Json> {
    return this.request('DELETE', `/v1/pprc/links/${encodeURIComponent(id)}/fault`);
  }

  // paths
  async listPaths(): Promise<Json[]> {
    return (await this.request<{ paths: Json[] }>('GET', '/v1/pprc/paths')).paths;
  }

  establishPath(body: { lss: number | string; to: string; targetLss: number | string; links: string[]; ifExists?: 'skip' | 'replace' }): Promise<Json> {
    return this.request('POST', '/v1/pprc/paths', body);
  }

  removePath(lss: number | string, to: string, targetLss: number | string): Promise<Json> {
    return this.request('DELETE', `/v1/pprc/paths/${encodeURIComponent(String(lss))}/${encodeURIComponent(to)}/${encodeURIComponent(String(targetLss))}`);
  }

  // pairs
  async list(): Promise<Json[]> {
    return (await this.request<{ pairs: Json[] }>('GET', '/v1/pprc/pairs')).pairs;
  }

  establish(body: EstablishPprcRequest): Promise<PprcQuery> {
    return this.request('POST', '/v1/pprc/pairs', body);
  }

  query(volume: string): Promise<PprcQuery> {
    return this.request('GET', vol(volume));
  }

  suspend(volume: string, from?: From): Promise<PprcQuery> {
    return this.request('POST', `${vol(volume)}/suspend`, from === undefined ? {} : { from });
  }

  resume(volume: string, body: { secondary?: { ess?: string; volume: string }; criticalVolume?: boolean } = {}): Promise<PprcQuery> {
    return this.request('POST', `${vol(volume)}/resume`, body);
  }

  terminate(volume: string, from?: From): Promise<Json> {
    return this.request('DELETE', `${vol(volume)}${from === undefined ? '' : `?from=${from}`}`);
  }

  waitForCopy(volume: string, thresholdPercent?: number): Promise<PprcQuery> {
    return this.request('POST', `${vol(volume)}/wait`, thresholdPercent === undefined ? {} : { thresholdPercent });
  }

  audit(volume: string): Promise<Json> {
    return this.request('POST', `${vol(volume)}/audit`, {});
  }

  // LSS, freeze, power cycle
  setLss(lss: number | string, settings: { criticalHeavy?: boolean; consistencyGroup?: boolean; consistencyTimeoutSec?: number }): Promise<Json> {
    return this.request('PUT', `/v1/pprc/lss/${encodeURIComponent(String(lss))}`, settings);
  }

  freeze(lss: Array<number | string>): Promise<Json> {
    return this.request('POST', '/v1/pprc/freeze', { lss });
  }

  release(lss: Array<number | string>): Promise<Json> {
    return this.request('POST', '/v1/pprc/release', { lss });
  }

  powerCycle(): Promise<Json> {
    return this.request('POST', '/v1/pprc/power-cycle', {});
  }

  // secondary side (what a RemoteSecondaryEss calls; here for diagnostics)
  secondaryStatus(): Promise<Json> {
    return this.request('GET', '/v1/pprc/secondary');
  }

  describeSecondary(volume: string): Promise<SecondaryVolumeFacts> {
    return this.request('GET', `/v1/pprc/secondary/volumes/${encodeURIComponent(volume)}`);
  }
}
