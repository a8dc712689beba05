/**
 * How a Volume's identity crosses NBD. The protocol has no identity field, so
 * lunrig puts a token into the export description (NBD_INFO_DESCRIPTION and
 * NBD_REP_SERVER), readable by people (nbdinfo shows it) and parsed by
 * NbdClient.identity():
 *
 *   lunrig-identity name=lun0 volumeId=10001ABCD uniqueId=6005076... serial=ABCDE lss=0x10
 *
 * Values are URI-encoded. A description without the token (another server, or
 * an export given its own description) leaves the client to derive an identity
 * from the export name. A later identity mechanism (a meta context or an
 * x-lunrig option) can replace this without changing NbdClient's API.
 */
import type { VolumeIdentity } from '../volume/volume.js';

const TOKEN = 'lunrig-identity';

export function formatIdentityDescription(id: VolumeIdentity): string {
  const kv = (k: string, v: string): string => `${k}=${encodeURIComponent(v)}`;
  return [TOKEN, kv('name', id.name), kv('volumeId', id.volumeId), kv('uniqueId', id.uniqueId), kv('serial', id.serial), `lss=0x${id.lss.toString(16)}`].join(' ');
}

export function parseIdentityDescription(description: string): VolumeIdentity | undefined {
  const at = description.indexOf(TOKEN + ' ');
  if (at < 0) return undefined;
  const fields = new Map<string, string>();
  for (const part of description.slice(at + TOKEN.length + 1).split(/\s+/)) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    try {
      fields.set(part.slice(0, eq), decodeURIComponent(part.slice(eq + 1)));
    } catch {
      return undefined;
    }
  }
  const name = fields.get('name');
  const volumeId = fields.get('volumeId');
  const uniqueId = fields.get('uniqueId');
  const serial = fields.get('serial');
  const lss = Number(fields.get('lss'));
  if (name === undefined || volumeId === undefined || uniqueId === undefined || serial === undefined || !Number.isInteger(lss)) return undefined;
  return { name, volumeId, uniqueId, serial, lss };
}
