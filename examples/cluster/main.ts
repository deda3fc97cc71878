/**
 * `npm start`: the one-process cluster (start.ts has the flags and the start). First, before the
 * platform's modules load (seconds under tsx): when the data dir had a router process that is gone
 * (every flynn-ts process was killed, the machine restarted), it is started again from its saved
 * config and last snapshot, so the apps answer while the platform is still starting; the platform
 * then re-attaches to it. Only the flags that decide this are read here, leniently: whenever they
 * do not clearly ask for a detached router on a kept data dir, nothing starts early.
 */
import { PLATFORM_DEFAULTS } from '../../src/bootstrap/platform-plan.js';
import { startSavedRouter } from '../../src/bootstrap/router-process.js';
import { earlyRouterFlags } from '../shared/early-router.js';
import { clusterName, defaultDataDir } from './data-dir.js';

const CONTROLLER_PORT = PLATFORM_DEFAULTS.controllerPort;

function earlyDataDir(argv: string[], env: NodeJS.ProcessEnv): string | undefined {
  const flags = earlyRouterFlags(argv, env);
  if (!flags || flags.elsewhere || !flags.detached) return undefined;
  if (flags.dataDir !== undefined) return flags.dataDir;
  const port = flags.controllerPort ?? String(CONTROLLER_PORT);
  return /^\d+$/.test(port) ? defaultDataDir(clusterName(port, CONTROLLER_PORT), env) : undefined;
}

const early = earlyDataDir(process.argv.slice(2), process.env);
// Awaited (about a second): on a busy machine the router's own start would otherwise compete for
// the CPU with the platform's module loading, and the platform's start waits for it anyway.
if (early !== undefined) await startSavedRouter(early);
await import('./start.js');
