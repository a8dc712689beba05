import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const run = promisify(execFile);

/** The code block that follows `<!-- example:NAME` in README.md. */
function readmeBlock(name: string): string {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf(`<!-- example:${name}`);
  expect(at, `README.md has no example:${name} marker`).toBeGreaterThanOrEqual(0);
  const m = /```ts\n([\s\S]*?)```/.exec(readme.slice(at));
  expect(m, `no ts block after example:${name}`).not.toBeNull();
  return m![1]!;
}

const written: string[] = [];
afterEach(() => {
  for (const f of written.splice(0)) rmSync(f, { force: true });
});

describe('README', () => {
  it('the library example runs as written and prints what its comments say', async () => {
    const code = readmeBlock('library');
    // Inside the package, so `import ... from 'lunrig'` resolves to this package (self-reference) as it would for a user.
    const file = path.join(ROOT, 'test', `.readme-example-${process.pid}.ts`);
    written.push(file);
    writeFileSync(file, code);
    const { stdout } = await run(process.execPath, ['--import', 'tsx', file], { cwd: ROOT, timeout: 60_000 });
    const lines = stdout.trim().split('\n');
    // Each `console.log(...); // expected` comment is checked against the line it printed.
    const expectations = [...code.matchAll(/console\.log\(.*\); \/\/ (.*)$/gm)].map((m) => m[1]!);
    expect(lines[0]).toBe(expectations[0]);
    expect(lines[1]).toBe(expectations[1]);
    expect(stdout).toContain("kind: 'data'");
    expect(stdout).toContain('offset: 4096');
    expect(stdout).toContain("kind: 'hole'");
  });
});
