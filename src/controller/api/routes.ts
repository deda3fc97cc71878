import { ControllerInputError } from '../errors.js';
import { routeView } from '../route-view.js';
import * as S from '../schemas.js';
import type { CreateRouteInput, UpdateHttpRouteInput } from '../route-types.js';
import { validateRouteTls } from '../route-tls.js';
import { validateDomain, validatePath, validatePort, validateService } from '../validate.js';
import type { ApiDeps, ApiServer, Req } from './deps.js';

/** `/routes` and `/apps/:app/routes`: HTTP and TCP routes (TLS keys never shown: route-view.ts). */
export function registerRouteRoutes(r: ApiServer, deps: ApiDeps): void {
  const { store } = deps;
  r.get('/routes', async () => (await store.listRoutes()).map(routeView));
  r.get('/apps/:app/routes', async (req: Req) => (await store.listRoutes(req.params.app)).map(routeView));
  r.post('/apps/:app/routes', { schema: { body: S.createRouteBody } }, async (req: Req<{ app: string }, CreateRouteInput & Record<string, unknown>>, reply) => {
    const input = routeInput(req.body);
    const app = await deps.app(req.params.app);
    if (input.type === 'http') checkDomainOwner(input.domain, app.name, deps.appDomain);
    else if (deps.reservedPorts[input.port] !== undefined) throw new ControllerInputError('port', `port ${input.port} is ${deps.reservedPorts[input.port]}: a tcp route needs a port of its own`);
    reply.status(201);
    return routeView(await store.createRoute(req.params.app, input));
  });
  // A route id is `<type>/<uuid>`; a malformed one (no `/`) arrives as `<it>/` and is named as given.
  const routeId = (p: { type: string; id: string }) => (p.id === '' ? p.type : `${p.type}/${p.id}`);
  r.get('/apps/:app/routes/:type/:id', async (req: Req<{ app: string; type: string; id: string }>) => routeView(await store.getRoute(req.params.app, routeId(req.params))));
  r.patch('/apps/:app/routes/http/:id', { schema: { body: S.updateHttpRouteBody } }, async (req: Req<{ app: string; id: string }, UpdateHttpRouteInput>) => {
    const body = req.body;
    if (body.service !== undefined) validateService(body.service);
    if (body.healthCheck) validatePath(body.healthCheck.path, 'healthCheck.path');
    if (body.acme === true && body.tls) throw new ControllerInputError('acme', 'acme and tls exclude each other: the certificate is either automatic or uploaded');
    if (body.acme === true || body.tls) {
      const route = await store.getRoute(req.params.app, `http/${req.params.id}`);
      if (route.type === 'http' && body.acme === true) acmeDomain(route.domain);
      if (route.type === 'http' && body.tls) validateRouteTls(body.tls, route.domain);
    }
    return routeView(await store.updateRoute(req.params.app, `http/${req.params.id}`, body));
  });
  r.delete('/apps/:app/routes/:type/:id', async (req: Req<{ app: string; type: string; id: string }>) => routeView(await store.deleteRoute(req.params.app, routeId(req.params))));
}

/** A new route as the store takes it, checked field by field (an http route has no port, a tcp route no domain...). */
function routeInput(body: CreateRouteInput & Record<string, unknown>): CreateRouteInput {
  validateService(body.service);
  if (body.type === 'http') {
    if (typeof body.domain !== 'string') throw new ControllerInputError('domain', 'an http route needs a domain');
    if (body.port !== undefined) throw new ControllerInputError('port', 'an http route has no port');
    if (body.healthCheck) validatePath(body.healthCheck.path, 'healthCheck.path');
    const { timeouts, healthCheck, redirectHttps, tls, acme } = body;
    const domain = validateDomain(body.domain.toLowerCase());
    if (acme) {
      if (tls) throw new ControllerInputError('acme', 'acme and tls exclude each other: the certificate is either automatic or uploaded');
      acmeDomain(domain);
    }
    return {
      type: 'http',
      domain,
      path: validatePath(body.path ?? '/'),
      service: body.service,
      sticky: body.sticky ?? false,
      ...(tls ? { tls: validateRouteTls(tls, domain) } : {}),
      ...(acme ? { acme } : {}),
      ...(timeouts ? { timeouts } : {}),
      ...(healthCheck ? { healthCheck } : {}),
      ...(redirectHttps ? { redirectHttps } : {}),
    };
  }
  if (typeof body.port !== 'number') throw new ControllerInputError('port', 'a tcp route needs a port');
  for (const f of ['domain', 'path', 'sticky', 'tls', 'acme', 'timeouts', 'healthCheck', 'redirectHttps']) if (body[f] !== undefined) throw new ControllerInputError(f, `a tcp route has no ${f}`);
  return { type: 'tcp', port: validatePort(body.port), service: body.service };
}

/** HTTP-01 proves control of one exact name: a wildcard certificate needs DNS-01, which is not done. */
function acmeDomain(domain: string): void {
  if (domain.startsWith('*.')) throw new ControllerInputError('acme', `acme cannot certify the wildcard ${domain}: HTTP-01 validates exact names only (upload a certificate with tls instead)`);
}

/** `<app>.<appDomain>` and the names below it belong to app `<app>`; the app domain itself and its wildcard to none. */
function checkDomainOwner(domain: string, app: string, appDomain: string | null): void {
  if (appDomain === null) return;
  const suffix = `.${appDomain}`;
  if (domain === appDomain || domain === `*${suffix}`) throw new ControllerInputError('domain', `${domain} is the cluster's app domain: every app has its own name under it (${app}${suffix})`);
  if (!domain.endsWith(suffix)) return;
  const owner = domain.slice(0, -suffix.length).split('.').at(-1);
  if (owner !== app) throw new ControllerInputError('domain', `${domain} belongs to the app ${JSON.stringify(owner)} (names under ${appDomain} are <app>${suffix}); use ${app}${suffix}, a name under it, or a domain of your own`);
}
