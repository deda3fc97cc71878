/**
 * `npm start`: the one-process cluster (start.ts has the flags and the start). First, before the
 * platform's modules load (seconds under tsx): when the data dir had a router process that is gone
 * (every flynn-ts process was killed, the machine restarted), it is started again from its saved
 * config and last snapshot, so the apps answer while the platform is still starting; the platform
 * then re-attaches to it. Only the flags that decide this are read here, leniently: whenever they
 * do not clearly ask for a detached router on a kept data dir, nothing starts early.
 */
import { parseArgs } from 'node:util';
import { PLATFORM_DEFAULTS } from '../../src/bootstrap/platform-plan.js';
import { startSavedRouter } from '../../src/bootstrap/router-process.js';
import { TRUE_WORDS } from '../shared/cli-args.js';
import { clusterName, defaultDataDir } from './data-dir.js';

const CONTROLLER_PORT = PLATFORM_DEFAULTS.controllerPort;

function earlyDataDir(argv: string[], env: NodeJS.ProcessEnv): string | undefined {
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, strict: false, allowPositionals: true, options: { 'data-dir': { type: 'string' }, ephemeral: { type: 'boolean' }, router: { type: 'string' }, 'controller-port': { type: 'string' }, help: { type: 'boolean', short: 'h' } } }));
  } catch {
    return undefined;
  }
  const flagOrEnv = (flag: string, name: string) => values[flag] ?? (env[name] || undefined);
  const ephemeral = values.ephemeral ?? TRUE_WORDS.has((env.FLYNN_EPHEMERAL ?? '').toLowerCase());
  if (values.help || ephemeral || (flagOrEnv('router', 'FLYNN_ROUTER_PROCESS') ?? 'detached') !== 'detached') return undefined;
  const dataDir = flagOrEnv('data-dir', 'FLYNN_DATA_DIR');
  if (typeof dataDir === 'string') return dataDir;
  const port = flagOrEnv('controller-port', 'FLYNN_CONTROLLER_PORT') ?? String(CONTROLLER_PORT);
  return typeof port === 'string' && /^\d+$/.test(port) ? defaultDataDir(clusterName(port, CONTROLLER_PORT), env) : undefined;
}

const early = earlyDataDir(process.argv.slice(2), process.env);
// Awaited (about a second): on a busy machine the router's own start would otherwise compete for
// the CPU with the platform's module loading, and the platform's start waits for it anyway.
if (early !== undefined) await startSavedRouter(early);
await import('./start.js');
