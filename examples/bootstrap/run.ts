/**
 * What the bootstrap and platform binaries share: bootstrap a manifest, print each step, print how
 * to add the cluster to the CLI, and close everything on SIGINT/SIGTERM.
 */
import { bootstrap, type BootstrapManifest } from '../../src/bootstrap/index.js';
import { FlynnError } from '../../src/common/errors.js';
import { createConsoleLogger, type Logger } from '../../src/common/logger.js';

export interface RunOptions {
  /** Prefix of error lines, e.g. `bootstrap`. */
  name: string;
  /** One JSON object per line (`{"step":...}`, last `{"step":"ready",...urls}`) instead of text. */
  json?: boolean;
  /** Print the key in the `server-add` line (else `$CONTROLLER_KEY`). */
  showKey?: boolean;
  logger?: Logger;
}

export async function runBootstrap(manifest: BootstrapManifest, options: RunOptions): Promise<void> {
  const logger = options.logger ?? createConsoleLogger({ level: 'warn' });
  const say = (step: string, message: string) => console.log(options.json ? JSON.stringify({ step, message }) : `-----> ${step}: ${message}`);
  let platform;
  try {
    platform = await bootstrap(manifest, { logger, onStep: (s) => say(s.step, s.message) });
  } catch (err) {
    const code = err instanceof FlynnError ? ` (${err.code})` : '';
    console.error(`${options.name}: ${(err as Error).message}${code}`);
    process.exit(1);
  }
  const urls = {
    controllerUrl: platform.controllerUrl,
    routerUrl: platform.routerUrl,
    gitHost: platform.gitHost,
    gitFingerprint: platform.gitFingerprint,
    shelfUrl: platform.shelfUrl,
    domain: platform.domain,
    hostIds: platform.hostIds,
  };
  const key = options.showKey ? platform.key : '$CONTROLLER_KEY';
  const serverAdd = `flynn server-add -g ${platform.gitHost} default ${platform.controllerUrl} ${key}`;
  if (options.json) console.log(JSON.stringify({ step: 'ready', ...urls, serverAdd }));
  else {
    console.log(`
flynn-ts layer 1 up on ${platform.hostIds.length} host(s): ${platform.hostIds.join(', ')}
  controller  ${platform.controllerUrl}
  router      ${platform.routerUrl}   (apps at http://<app>.${platform.domain}:${platform.routerPort})
  git         ssh://git@${platform.gitHost}   host key ${platform.gitFingerprint}
  shelf       ${platform.shelfUrl}   (the hosts download slugs from it)

  ${serverAdd}
`);
  }
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      say('stop', `${signal}: closing layer 1 (the host agents and their jobs keep running)`);
      void platform.close().then(() => process.exit(0));
    });
  }
}
