import { ConflictError, InvalidInputError } from '../common/errors.js';

export const BootstrapErrorCodes = Object.freeze({
  INVALID_OPTIONS: 'FLYNN_ERR_BOOTSTRAP_INVALID_OPTIONS',
  /** A bootstrap manifest that cannot be parsed or used. */
  INVALID_MANIFEST: 'FLYNN_ERR_BOOTSTRAP_INVALID_MANIFEST',
  /** Discovery (layer 0) did not answer at bootstrap. */
  DISCOVERY_UNAVAILABLE: 'FLYNN_ERR_BOOTSTRAP_DISCOVERY_UNAVAILABLE',
  /** A component did not come up in time while the cluster started (or too few host agents registered). */
  NOT_READY: 'FLYNN_ERR_BOOTSTRAP_NOT_READY',
  /** A component's port is taken (another cluster, or another program, listens there). */
  PORT_IN_USE: 'FLYNN_ERR_BOOTSTRAP_PORT_IN_USE',
  /** A state file in the data dir (cluster id, controller key, certificates, the store) is unreadable, missing or not what it should be. */
  BAD_STATE_FILE: 'FLYNN_ERR_BOOTSTRAP_BAD_STATE_FILE',
  /** Another running cluster holds the data dir. */
  DATA_DIR_IN_USE: 'FLYNN_ERR_BOOTSTRAP_DATA_DIR_IN_USE',
});

/** Cluster options that cannot be used. `detail.field` names the option. */
export class BootstrapInputError extends InvalidInputError {
  constructor(message: string, field: string) {
    super(BootstrapErrorCodes.INVALID_OPTIONS, message, { field });
  }
}

/**
 * A state file of the data dir that is there but cannot be used (truncated, edited). It is never
 * replaced silently: a new cluster id or key would change the cluster's identity. `detail.file` names it.
 */
export class BootstrapStateFileError extends InvalidInputError {
  /** `problem` replaces `is not a valid <what> (truncated or edited?)` in the message. */
  constructor(file: string, what: string, fix: string, problem = `is not a valid ${what} (truncated or edited?)`) {
    super(BootstrapErrorCodes.BAD_STATE_FILE, `${file} ${problem}: ${fix}`, { field: 'dataDir', detail: { file } });
  }
}

/** Another cluster (process `detail.pid`) runs on this data dir: two would adopt each other's jobs. */
export class BootstrapDataDirInUseError extends ConflictError {
  constructor(dataDir: string, pid: number, lockFile: string) {
    super(
      BootstrapErrorCodes.DATA_DIR_IN_USE,
      `the data dir ${dataDir} is in use by process ${pid} (another cluster?): stop it or pick another data dir (if no cluster runs there, delete ${lockFile})`,
      { detail: { dataDir, pid, file: lockFile } },
    );
  }
}

/** One thing wrong with a manifest; `field` is its path (`controller.port`, `discovery.endpoints[0]`), empty for the text as a whole. */
export interface ManifestProblem {
  field: string;
  message: string;
}

/**
 * A manifest that cannot be used. The message lists every problem; `detail` has `field` (the
 * first), `problems`, and for a syntax error `line` and `column`; `source` is the file.
 */
export class BootstrapManifestError extends InvalidInputError {
  readonly problems: readonly ManifestProblem[];

  constructor(problems: ManifestProblem[], where: { source?: string; line?: number; column?: number }) {
    const list = problems.length > 0 ? problems : [{ field: '', message: 'the manifest is invalid' }];
    const head = `invalid bootstrap manifest${where.source === undefined ? '' : ` ${where.source}`}`;
    const message = list.length === 1 ? `${head}: ${list[0]?.message}` : `${head}:\n${list.map((p) => `  - ${p.message}`).join('\n')}`;
    super(BootstrapErrorCodes.INVALID_MANIFEST, message, { field: list[0]?.field ?? '', detail: { problems: list, ...where } });
    this.problems = list;
  }
}

/** The components of a platform that listen on a port of their own. */
export type ListeningComponent = 'controller' | 'router' | 'routerHttps' | 'routerMetrics' | 'git' | 'shelf';

/** How messages name a component: `the git receiver cannot listen ...`. */
export const COMPONENT_NAMES: Readonly<Record<ListeningComponent, string>> = Object.freeze({ controller: 'controller', router: 'router', routerHttps: 'router (HTTPS)', routerMetrics: 'router metrics listener', git: 'git receiver', shelf: 'shelf' });

/**
 * A component cannot listen because its port is in use. `component` names it, `host`/`port` the
 * address, `option` the option that sets the port (`ports.shelf`); `detail` carries the same.
 * Nothing the start had begun is left running when this is thrown.
 */
export class BootstrapPortInUseError extends ConflictError {
  readonly component: ListeningComponent;
  readonly host: string;
  readonly port: number;
  readonly option: string;

  constructor(component: ListeningComponent, host: string, port: number, cause?: unknown) {
    const option = component === 'routerMetrics' ? 'routerMetrics.port' : `ports.${component}`;
    super(BootstrapErrorCodes.PORT_IN_USE, `the ${COMPONENT_NAMES[component]} cannot listen on ${host}:${port}: the port is in use (set ${option} to another port, 0 = any free port)`, {
      cause,
      detail: { component, host, port, option },
    });
    this.component = component;
    this.host = host;
    this.port = port;
    this.option = option;
  }
}

/** Whether `err` (or an error in its `cause` chain) is a listen on a port already in use. */
export function isAddressInUse(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') return true;
  }
  return false;
}
