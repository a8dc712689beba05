import { createRequire } from 'node:module';

// package.json sits one level above both src/version.ts and dist/version.js.
const pkg = createRequire(import.meta.url)('../package.json') as { version: string };

export const VERSION: string = pkg.version;
