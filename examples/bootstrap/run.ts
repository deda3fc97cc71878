/**
 * What the bootstrap and platform binaries share: bootstrap a manifest, print each step, print how
 * to add the cluster to the CLI, and close everything on SIGINT/SIGTERM.
 */
import { bootstrap, serverAddArgs, type BootstrapHandle, type BootstrapManifest, type ListeningComponent } from '../../src/bootstrap/index.js';
import { createConsoleLogger, type Logger } from '../../src/common/logger.js';
import { proxyEnv } from '../shared/build-env.js';
import { startFailure } from '../shared/cli-args.js';
import { routerLogLines } from '../shared/router-flags.js';

export interface RunOptions {
  /** Prefix of error lines, e.g. `bootstrap`. */
  name: string;
  /** One JSON object per line (`{"step","message"}`; `ready` adds the URLs; last `server-add`) instead of text. */
  json?: boolean;
  /** Print the key in the `server-add` line (else `$CONTROLLER_KEY`). */
  showKey?: boolean;
  /** How to pick another port per component, for a busy port (`--shelf-port N`, `shelf.port in the manifest`). */
  portHint?: Partial<Record<ListeningComponent, string>>;
  logger?: Logger;
}

const urlsOf = (p: BootstrapHandle) => ({
  controllerUrl: p.controllerUrl,
  controllerPin: p.controllerPin,
  routerUrl: p.routerUrl,
  ...(p.routerMetricsUrl ? { routerMetricsUrl: p.routerMetricsUrl } : {}),
  ...(p.routerAccessLog ? { routerAccessLog: p.routerAccessLog } : {}),
  gitHost: p.gitHost,
  gitFingerprint: p.gitFingerprint,
  shelfUrl: p.shelfUrl,
  domain: p.domain,
  hostIds: p.hostIds,
});

export async function runBootstrap(manifest: BootstrapManifest, options: RunOptions): Promise<void> {
  const logger = options.logger ?? createConsoleLogger({ level: 'warn' });
  const say = (step: string, message: string) => console.log(options.json ? JSON.stringify({ step, message }) : `-----> ${step}: ${message}`);
  let platform: BootstrapHandle;
  // In JSON the `ready` step is the last line, with the URLs (below).
  let readyMessage = '';
  try {
    // This process's HTTP(S)_PROXY/NO_PROXY reach the builds; the manifest's buildEnv wins.
    platform = await bootstrap({ ...manifest, buildEnv: { ...proxyEnv(), ...manifest.buildEnv } }, { logger, onStep: (s) => (options.json && s.step === 'ready' ? (readyMessage = s.message) : say(s.step, s.message)) });
  } catch (err) {
    // bootstrap has closed whatever it had started.
    console.error(`${options.name}: ${startFailure(err, options.portHint)}`);
    process.exit(1);
  }
  // Before the ready lines: whoever waits for them may signal at once.
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      say('stop', `${signal}: closing layer 1 (the host agents and their jobs keep running)`);
      void platform.close().then(() => process.exit(0));
    });
  }
  if (options.json) console.log(JSON.stringify({ step: 'ready', message: readyMessage, ...urlsOf(platform) }));
  const key = options.showKey ? platform.key : '$CONTROLLER_KEY';
  const serverAdd = `flynn ${serverAddArgs(platform, 'default', key).join(' ')}`;
  if (options.json) console.log(JSON.stringify({ step: 'server-add', message: serverAdd }));
  else {
    console.log(`
flynn-ts layer 1 up on ${platform.hostIds.length} host(s): ${platform.hostIds.join(', ')}
  controller  ${platform.controllerUrl}${platform.controllerPin === null ? '   (plain HTTP)' : `   certificate pin ${platform.controllerPin}`}
  router      ${platform.routerUrl}   (apps at http://<app>.${platform.domain}:${platform.routerPort})${routerLogLines(platform)}
  git         ssh://git@${platform.gitHost}   host key ${platform.gitFingerprint}
  shelf       ${platform.shelfUrl}   (the hosts download slugs from it)
  host key    FLYNN_HOST_KEY=${options.showKey ? platform.hostAgentKey : '$(npm run -s host-key)'} for examples/host/main.ts on every host

  ${serverAdd}
`);
  }
}
