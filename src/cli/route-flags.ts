/** The router's per-route options as `route-add-http` / `route-update` flags. */
import type { HttpRouteHealthCheck, HttpRouteOptions, HttpRouteTimeouts } from '../controller/route-types.js';
import type { OptionSpec, Values } from './context.js';
import { CliError } from './errors.js';

const TIMEOUT_FLAGS = {
  'connect-timeout': 'connectMs',
  'response-timeout': 'responseHeadersMs',
  'idle-timeout': 'idleMs',
  'websocket-idle-timeout': 'websocketIdleMs',
} as const satisfies Record<string, keyof HttpRouteTimeouts>;

export const ROUTE_OPTION_FLAGS: OptionSpec = {
  ...Object.fromEntries(Object.keys(TIMEOUT_FLAGS).map((flag) => [flag, { type: 'string' }])),
  'health-path': { type: 'string' },
  'health-interval': { type: 'string' },
  'health-timeout': { type: 'string' },
  'redirect-https': { type: 'boolean' },
};

export const ROUTE_OPTION_USAGE = '[--connect-timeout D] [--response-timeout D] [--idle-timeout D] [--websocket-idle-timeout D] [--health-path PATH [--health-interval D] [--health-timeout D]] [--redirect-https]';

export const ROUTE_OPTION_HELP =
  'D is a duration: 500ms, 5s, 2m, or whole milliseconds. The timeouts override the router\'s for this route (connect, response headers, idle body, idle WebSocket); --health-path adds an active health check (GET PATH every --health-interval, default 10s, failing after --health-timeout, default 2s); --redirect-https answers plain HTTP with a 308 to HTTPS.';

/** `500ms`, `5s`, `2m` or whole ms, as whole ms ≥ 1. */
export function parseDuration(flag: string, value: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value.trim());
  const ms = m ? Math.round(Number(m[1]) * (m[2] === 'm' ? 60_000 : m[2] === 's' ? 1000 : 1)) : NaN;
  if (!(ms >= 1 && ms <= 2_147_483_647)) throw new CliError(`--${flag} wants a duration like 500ms, 5s or 2m; got ${JSON.stringify(value)}`, { usage: true });
  return ms;
}

/**
 * The route options the flags ask for, merged over `current` (a route's options when updating):
 * a timeout flag replaces that one timeout, a health flag that one health check field.
 */
export function routeOptionsFromFlags(values: Values, current: HttpRouteOptions = {}): HttpRouteOptions {
  const out: HttpRouteOptions = {};
  const timeouts: HttpRouteTimeouts = { ...current.timeouts };
  let timeoutsSet = false;
  for (const [flag, field] of Object.entries(TIMEOUT_FLAGS)) {
    const v = values[flag];
    if (typeof v !== 'string') continue;
    timeouts[field] = parseDuration(flag, v);
    timeoutsSet = true;
  }
  if (timeoutsSet) out.timeouts = timeouts;
  const path = values['health-path'];
  const interval = values['health-interval'];
  const timeout = values['health-timeout'];
  if (typeof path === 'string' || typeof interval === 'string' || typeof timeout === 'string') {
    const base = typeof path === 'string' ? { ...current.healthCheck, path } : current.healthCheck;
    if (!base) throw new CliError('--health-interval and --health-timeout need --health-path (the route has no health check yet)', { usage: true });
    const check: HttpRouteHealthCheck = { ...base };
    if (typeof interval === 'string') check.intervalMs = parseDuration('health-interval', interval);
    if (typeof timeout === 'string') check.timeoutMs = parseDuration('health-timeout', timeout);
    out.healthCheck = check;
  }
  if (values['redirect-https'] === true) out.redirectHttps = true;
  return out;
}
