/**
 * The flags a launcher reads before the platform's modules load, to start the data dir's saved
 * router first (src/bootstrap/router-process.ts `startSavedRouter`). Read leniently: anything that
 * does not parse is left to the full flag parser that runs next, which says what is wrong.
 */
import { parseArgs } from 'node:util';
import { TRUE_WORDS } from './cli-args.js';

export interface EarlyRouterFlags {
  /** `--data-dir` or `FLYNN_DATA_DIR`. */
  dataDir?: string;
  /** `--controller-port` or `FLYNN_CONTROLLER_PORT`. */
  controllerPort?: string;
  /** Whether the router is the detached process that can start before the platform (the default). */
  detached: boolean;
  /** `--ephemeral`/`FLYNN_EPHEMERAL`, `--help` or `--manifest`: the flags do not say where a saved router would be. */
  elsewhere: boolean;
}

export function earlyRouterFlags(argv: string[], env: NodeJS.ProcessEnv): EarlyRouterFlags | undefined {
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, strict: false, allowPositionals: true, options: { 'data-dir': { type: 'string' }, ephemeral: { type: 'boolean' }, router: { type: 'string' }, 'controller-port': { type: 'string' }, manifest: { type: 'string' }, help: { type: 'boolean', short: 'h' } } }));
  } catch {
    return undefined;
  }
  const flagOrEnv = (flag: string, name: string) => values[flag] ?? (env[name] || undefined);
  const ephemeral = values.ephemeral ?? TRUE_WORDS.has((env.FLYNN_EPHEMERAL ?? '').toLowerCase());
  const dataDir = flagOrEnv('data-dir', 'FLYNN_DATA_DIR');
  const controllerPort = flagOrEnv('controller-port', 'FLYNN_CONTROLLER_PORT');
  return {
    ...(typeof dataDir === 'string' ? { dataDir } : {}),
    ...(typeof controllerPort === 'string' ? { controllerPort } : {}),
    detached: (flagOrEnv('router', 'FLYNN_ROUTER_PROCESS') ?? 'detached') === 'detached',
    elsewhere: Boolean(values.help || ephemeral || values.manifest !== undefined),
  };
}
