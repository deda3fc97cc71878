/**
 * The multi-machine platform daemon (start.ts has the flags and the start). First, before the
 * platform's modules load and before etcd has to answer: when `--data-dir` had a detached router
 * that is gone (the machine restarted), it is started again from its saved config and last
 * snapshot, so the apps answer while the platform is still starting or waiting for etcd. A
 * `--manifest` start is left to the platform (the manifest says where its data dir is).
 */
import { startSavedRouter } from '../../src/bootstrap/router-process.js';
import { earlyRouterFlags } from '../shared/early-router.js';

const flags = earlyRouterFlags(process.argv.slice(2), process.env);
if (flags?.dataDir !== undefined && flags.detached && !flags.elsewhere) await startSavedRouter(flags.dataDir);
await import('./start.js');
