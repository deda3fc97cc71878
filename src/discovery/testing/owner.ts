import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { DiscoveryConfig } from '../create.js';
import type { RegisterOptions } from '../types.js';

/** A child process that registered an instance and keeps it alive until killed. */
export interface OwnerProcess {
  readonly id: string;
  readonly pid: number;
  /** SIGKILL the process (no chance to unregister) and wait for it to exit. */
  kill(): Promise<void>;
}

/**
 * Start `owner-process` in a child Node process that registers `options` through
 * `createDiscovery(config)`; resolves once it printed the instance id. Under tsx (`.ts` sources)
 * the child is started with `--import tsx`.
 */
export async function startOwnerProcess(config: DiscoveryConfig, options: RegisterOptions, timeoutMs = 15_000): Promise<OwnerProcess> {
  const here = import.meta.url;
  const ext = here.endsWith('.ts') ? '.ts' : '.js';
  const script = fileURLToPath(new URL(`./owner-process${ext}`, here));
  const args = ext === '.ts' ? ['--import', 'tsx', script] : [script];
  const child: ChildProcess = spawn(process.execPath, [...args, JSON.stringify(config), JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const id = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`owner process printed no id within ${timeoutMs} ms: ${stderr}`));
    }, timeoutMs);
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.once('line', (line) => {
      clearTimeout(timer);
      try {
        resolve((JSON.parse(line) as { id: string }).id);
      } catch {
        reject(new Error(`owner process printed ${JSON.stringify(line)}; stderr: ${stderr}`));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`owner process exited with ${code} before registering: ${stderr}`));
    });
  });
  return {
    id,
    pid: child.pid as number,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
