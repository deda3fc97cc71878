/** Where `npm start` keeps a cluster when no `--data-dir` is given. */
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The CLI's name of the cluster on `controllerPort`: `local` on the default port, else `local-<port>` (a cluster beside the first). */
export function clusterName(controllerPort: number | string, defaultPort: number): string {
  return String(controllerPort) === String(defaultPort) ? 'local' : `local-${controllerPort}`;
}

/** `$XDG_DATA_HOME/flynn-ts/<name>`, else `~/.local/share/flynn-ts/<name>`. */
export function defaultDataDir(name: string, env: NodeJS.ProcessEnv): string {
  return join(env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'flynn-ts', name);
}
