// `npm install` builds the addon through this script rather than a bare
// `node-gyp rebuild`, so that it builds against the headers of the Node that
// runs it when they are installed (no header download, which needs a network),
// and so that a machine without a compiler still gets a working lunrig: the
// pure-TypeScript fallback. CI sets LUNRIG_REQUIRE_NATIVE=1 to make a failed
// build an error instead.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const here = path.dirname(new URL(import.meta.url).pathname);
const args = [require.resolve('node-gyp/bin/node-gyp.js'), 'rebuild', '-C', here];
const localPrefix = path.dirname(path.dirname(process.execPath));
if (!process.env.npm_config_nodedir && existsSync(path.join(localPrefix, 'include', 'node', 'node.h'))) {
  args.push(`--nodedir=${localPrefix}`);
}
const result = spawnSync(process.execPath, args, { stdio: 'inherit' });
if (result.status !== 0) {
  const message = 'lunrig: building the native addon failed; lunrig will use its TypeScript fallback (slower CRC32C and bitmaps, no hole punching or SEEK_DATA).';
  if (process.env.LUNRIG_REQUIRE_NATIVE === '1') {
    console.error(message.replace('will use', 'would use') + ' LUNRIG_REQUIRE_NATIVE=1 makes this fatal.');
    process.exit(result.status ?? 1);
  }
  console.warn(message);
}
