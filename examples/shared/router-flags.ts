/**
 * The router's access-log and metrics flags of the binaries that start a platform (`npm start`,
 * examples/platform), and the banner lines that say where they went.
 */
import type { Platform, PlatformAccessLogOptions } from '../../src/bootstrap/index.js';
import type { Cli } from './cli-args.js';

export const ROUTER_LOG_FLAGS = {
  'router-access-log': { type: 'string', value: 'json|combined', env: 'FLYNN_ROUTER_ACCESS_LOG', help: "the router's access log, one line per request (off unless given), appended to <data dir>/router-access.log (stdout without a data dir)" },
  'router-access-log-file': { type: 'string', value: 'FILE', env: 'FLYNN_ROUTER_ACCESS_LOG_FILE', help: 'file the access log is appended to (mode 0600, moved to FILE.1 past 64 MiB, reopened on SIGHUP by the router process; - = stdout); turns the log on' },
  'router-metrics-port': { type: 'string', value: 'N', env: 'FLYNN_ROUTER_METRICS_PORT', help: "serve the router's Prometheus metrics at http://<host>:N/metrics (0 = any free port; off unless given)" },
} as const;

type RouterLogCli = Pick<Cli<typeof ROUTER_LOG_FLAGS>, 'values' | 'port' | 'oneOf'>;

/** The access log the flags ask for (`file` undefined: the default place; null: stdout), or undefined when off. */
export function accessLogOf(cli: RouterLogCli): PlatformAccessLogOptions | undefined {
  const file = cli.values['router-access-log-file'];
  if (cli.values['router-access-log'] === undefined && !file) return undefined;
  const format = cli.values['router-access-log'] === undefined ? 'json' : cli.oneOf('router-access-log', ['json', 'combined'] as const);
  return { format, ...(file ? { file: file === '-' ? null : file } : {}) };
}

/** `routerAccessLog` and `routerMetrics` of `startCluster` as the flags ask (none when off). */
export function routerLogOptions(cli: RouterLogCli): { routerAccessLog?: PlatformAccessLogOptions; routerMetrics?: { port: number } } {
  const accessLog = accessLogOf(cli);
  return {
    ...(accessLog ? { routerAccessLog: accessLog } : {}),
    ...(cli.values['router-metrics-port'] === undefined ? {} : { routerMetrics: { port: cli.port('router-metrics-port') } }),
  };
}

/** Banner lines for the router's metrics and access log, each after a newline (empty when both are off). */
export function routerLogLines(p: Pick<Platform, 'routerMetricsUrl' | 'routerAccessLog'>): string {
  return [p.routerMetricsUrl ? `\n  metrics     ${p.routerMetricsUrl}` : '', p.routerAccessLog ? `\n  access log  ${p.routerAccessLog}` : ''].join('');
}
