/**
 * The router (Flynn's strowger): HTTP, HTTPS and TCP routing to the live instances of services in
 * discovery, following route and backend changes without a restart.
 *
 * ```ts
 * import { startRouter, MemoryRouteSource } from 'flynn-ts/router';
 * const routes = new MemoryRouteSource([{ id: 'web', type: 'http', domain: 'app.example.com', service: 'app-web' }]);
 * await using router = await startRouter({ discovery, routes, http: { host: '127.0.0.1', port: 8080 } });
 * ```
 * @module
 */
export { startRouter } from './router.js';
export type { Router, RouterOptions, ListenAddress, BoundAddress, HaproxyOptions } from './router.js';
export { MemoryRouteSource } from './route-source.js';
export type { RouteSource, RouteWatchOptions } from './route-source.js';
export { ROUTER_DEFAULTS } from './types.js';
export type { HttpRoute, TcpRoute, Route, RouteEvent, RouteTimeouts, HealthCheck } from './types.js';
export { validateRoute } from './validate.js';
export { RouterErrorCodes, RouterInputError, RouteConflictError, RouterListenError } from './errors.js';
