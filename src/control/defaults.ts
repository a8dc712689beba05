/** Where the control API listens unless told otherwise: loopback only (DESIGN.md: safe defaults). */
export const DEFAULT_CONTROL_HOST = '127.0.0.1';
export const DEFAULT_CONTROL_PORT = 10810;

/** `http://host:port`, with an IPv6 host in brackets. */
export function controlUrl({ host, port }: { host: string; port: number }): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export const DEFAULT_SERVER_URL = controlUrl({ host: DEFAULT_CONTROL_HOST, port: DEFAULT_CONTROL_PORT });
