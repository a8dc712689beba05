import { spawn } from 'node:child_process';

/**
 * Run a node child (a crash fixture), count stdout lines matching `marks`, and
 * SIGKILL it once `count` have been printed. Resolves with everything it
 * printed; rejects if it exits on its own first.
 */
export function runUntilKilled(args: string[], marks: RegExp, count: number, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let log = '';
    let stderr = '';
    let seen = 0;
    let killed = false;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      log += chunk;
      seen += (chunk.match(marks) ?? []).length;
      if (!killed && seen >= count) {
        killed = true;
        child.kill('SIGKILL');
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve(log) : reject(new Error(`${args[0]} exited early (code ${code}): ${stderr}`))));
  });
}
