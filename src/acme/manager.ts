import { X509Certificate } from 'node:crypto';
import { get as httpGet } from 'node:http';
import { Client, crypto as acmeCrypto } from 'acme-client';
import { systemClock, type Clock } from '../common/clock.js';
import { CloseGuard, settlesWithin, type Closable } from '../common/lifecycle.js';
import { silentLogger, type Logger } from '../common/logger.js';
import type { Store } from '../controller/store.js';
import type { HttpRoute, HttpRouteAcme } from '../controller/route-types.js';
import { AcmeErrorCodes, AcmeInputError } from './errors.js';
import { reachDirectory } from './directory-check.js';
import { trustDirectoryCa } from './trust.js';

/** Let's Encrypt's production directory, the default CA. */
export const LETS_ENCRYPT_DIRECTORY = 'https://acme-v02.api.letsencrypt.org/directory';

export const ACME_DEFAULTS = Object.freeze({
  directoryUrl: LETS_ENCRYPT_DIRECTORY,
  /** Renew a certificate when fewer days than this remain (Let's Encrypt's own advice: 30 of 90). */
  renewBeforeDays: 30,
  /** How often every route is looked at for renewal, ms. */
  checkIntervalMs: 3_600_000,
  /** Wait before ordering again for a route whose last order failed, ms (Let's Encrypt allows 5 failed validations per name an hour). */
  retryFailedMs: 3_600_000,
  /** First wait between polls of a challenge or order, ms (doubled up to 10×). */
  pollMs: 500,
  /** Longest wait for the router to serve a challenge before telling the CA, ms. */
  probeTimeoutMs: 10_000,
  /**
   * Longest wait for the CA's directory, fetched over a direct connection before each order, ms: an
   * unreachable CA fails the order in one line within this. 0 skips the check (a CA reached only
   * through an HTTP(S) proxy, which acme-client's own requests use).
   */
  directoryTimeoutMs: 10_000,
});

/** What the ACME client needs of the controller's store. */
export type AcmeStore = Pick<Store, 'listRoutes' | 'getRoute' | 'watchRoutes' | 'recordAcme' | 'acmeAccountKey'>;

export interface AcmeOptions {
  store: AcmeStore;
  /** ACME directory URL. Default {@link LETS_ENCRYPT_DIRECTORY}; a private CA's (step-ca, Pebble, Boulder...) works the same. */
  directoryUrl?: string;
  /** Contact email of the account (`mailto:`), told of expiry problems by the CA. Default none. */
  email?: string;
  /** PEM certificates trusted for the directory's HTTPS instead of node's default roots (a private CA's, Pebble's own). */
  ca?: string;
  /** Renew when fewer days remain. Default 30. */
  renewBeforeDays?: number;
  checkIntervalMs?: number;
  retryFailedMs?: number;
  pollMs?: number;
  /**
   * The router's plain-HTTP base URL (`http://127.0.0.1:8080`): before telling the CA, the client
   * asks the router for the challenge with the domain as Host until it is served (the route change
   * travels to the router first). Default: no probe.
   */
  routerUrl?: string;
  probeTimeoutMs?: number;
  directoryTimeoutMs?: number;
  clock?: Clock;
  logger?: Logger;
}

/** Pause between two asks of the router for a challenge, ms. */
const PROBE_PAUSE_MS = 50;

/** A running ACME client. */
export interface AcmeManager extends Closable {
  /** Look at every route now (rather than at the next interval): order what is due. Resolves once those orders ended. */
  check(): Promise<void>;
}

/** `GET url` with `Host: host` (fetch may not set Host): the body of a 200, else ''. */
function getText(url: URL, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpGet(url, { headers: { host }, agent: false, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(res.statusCode === 200 ? body : ''));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** One line, short: what a route's status shows. */
function oneLine(err: unknown): string {
  const text = (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').trim();
  return text.length > 300 ? `${text.slice(0, 297)}...` : text || 'unknown error';
}

function nonNegative(value: number, field: string): number {
  if (!Number.isFinite(value) || value < 0) throw new AcmeInputError(AcmeErrorCodes.INVALID_OPTIONS, `${field} must be a number ≥ 0, got ${value}`, { field });
  return value;
}

/**
 * Start the ACME client (RFC 8555, HTTP-01) of a cluster: it follows the controller's routes, and
 * for each HTTP route with `acme` orders a certificate for its domain, has the router answer the
 * challenge (the route's `acme.challenge`, which the router serves), and stores the issued chain
 * and key on the route like an uploaded pair, so that SNI serves it at once. Renews when fewer
 * than `renewBeforeDays` remain; a failure is the route's one-line `acme.error`, ordered again
 * after `retryFailedMs`. The account key is made once and kept in the store.
 */
export async function startAcme(options: AcmeOptions): Promise<AcmeManager> {
  const o = { ...ACME_DEFAULTS, ...options };
  const directoryUrl = URL.canParse(o.directoryUrl) && /^https?:$/.test(new URL(o.directoryUrl).protocol) ? o.directoryUrl : undefined;
  if (directoryUrl === undefined) throw new AcmeInputError(AcmeErrorCodes.INVALID_OPTIONS, `directoryUrl must be an http(s) URL, got ${JSON.stringify(o.directoryUrl)}`, { field: 'directoryUrl' });
  const renewBeforeMs = nonNegative(o.renewBeforeDays, 'renewBeforeDays') * 86_400_000;
  if (o.email !== undefined && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(o.email)) throw new AcmeInputError(AcmeErrorCodes.INVALID_OPTIONS, `email must be an address like ops@example.com, got ${JSON.stringify(o.email)}`, { field: 'email' });
  if (o.ca !== undefined && !o.ca.includes('-----BEGIN CERTIFICATE-----')) throw new AcmeInputError(AcmeErrorCodes.INVALID_OPTIONS, 'ca must be PEM certificates', { field: 'ca' });
  const clock: Clock = o.clock ?? systemClock;
  const logger = (o.logger ?? silentLogger).child({ component: 'acme' });
  const { store } = o;
  const untrust = o.ca ? trustDirectoryCa(directoryUrl, o.ca) : undefined;
  const accountKey = await store.acmeAccountKey((await acmeCrypto.createPrivateEcdsaKey()).toString());
  const client = new Client({ directoryUrl, accountKey, backoffMin: o.pollMs, backoffMax: o.pollMs * 10, backoffAttempts: 10 });
  let account: Promise<unknown> | undefined;
  const inProgress = new Map<string, Promise<void>>();
  const stop = new AbortController();

  const due = (route: HttpRoute, now: number): boolean => {
    const acme = route.acme;
    if (!acme || inProgress.has(route.id)) return false;
    if (acme.status === 'pending') return true;
    if (acme.status === 'failed') return Date.parse(acme.updatedAt) + o.retryFailedMs <= now;
    return acme.expiresAt === undefined || Date.parse(acme.expiresAt) - renewBeforeMs <= now;
  };

  /** Ask the router for the challenge until it answers with the key authorization. */
  const served = async (domain: string, token: string, keyAuthorization: string): Promise<void> => {
    if (!o.routerUrl) return;
    const url = new URL(`/.well-known/acme-challenge/${token}`, o.routerUrl);
    // The router is another process (or HAProxy) with no stream of what it serves: it is asked.
    const end = clock.now() + o.probeTimeoutMs;
    while (clock.now() < end && !stop.signal.aborted) {
      if ((await getText(url, domain).catch(() => '')) === keyAuthorization) return;
      await clock.sleep(PROBE_PAUSE_MS, stop.signal).catch(() => undefined);
    }
    throw new Error(`the router at ${o.routerUrl} does not serve the challenge for ${domain}`);
  };

  const record = (route: HttpRoute, acme: HttpRouteAcme, tls?: { cert: string; key: string }) => store.recordAcme(route.appId, route.id, { acme, ...(tls ? { tls } : {}) });

  const order = async (route: HttpRoute): Promise<void> => {
    const domain = route.domain;
    const before = route.acme as HttpRouteAcme;
    // A renewal keeps what it has (and its expiry) until the new certificate is there.
    const kept: Omit<HttpRouteAcme, 'challenge'> = { status: before.status, updatedAt: before.updatedAt, ...(before.expiresAt && route.tls ? { expiresAt: before.expiresAt } : {}), ...(before.error ? { error: before.error } : {}) };
    logger.info('ordering a certificate', { route: route.id, domain });
    try {
      if (o.directoryTimeoutMs > 0) await reachDirectory(directoryUrl, o.directoryTimeoutMs, o.ca);
      account ??= client.createAccount({ termsOfServiceAgreed: true, ...(o.email ? { contact: [`mailto:${o.email}`] } : {}) }).catch((err: unknown) => {
        account = undefined;
        throw err;
      });
      await account;
      const placed = await client.createOrder({ identifiers: [{ type: 'dns', value: domain }] });
      for (const authz of await client.getAuthorizations(placed)) {
        if (authz.status === 'valid') continue;
        const challenge = authz.challenges.find((c) => c.type === 'http-01');
        if (!challenge) throw new Error(`the CA offers no http-01 challenge for ${domain}`);
        const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
        if (!(await record(route, { ...kept, challenge: { token: challenge.token, keyAuthorization } }))) return;
        await served(domain, challenge.token, keyAuthorization);
        await client.completeChallenge(challenge);
        await client.waitForValidStatus(challenge);
      }
      await client.waitForValidStatus(placed);
      const [key, csr] = await acmeCrypto.createCsr({ commonName: domain, altNames: [domain] }, await acmeCrypto.createPrivateEcdsaKey());
      const cert = await client.getCertificate(await client.finalizeOrder(placed, csr));
      const expiresAt = new Date(new X509Certificate(cert).validTo).toISOString();
      await record(route, { status: 'issued', expiresAt, updatedAt: new Date(clock.now()).toISOString() }, { cert, key: key.toString() });
      logger.info('certificate issued', { route: route.id, domain, expiresAt });
    } catch (err) {
      const error = oneLine(err);
      logger.warn('certificate order failed', { route: route.id, domain, error });
      await record(route, { ...kept, status: 'failed', error, updatedAt: new Date(clock.now()).toISOString() }).catch((e: unknown) => logger.warn('cannot record an acme failure', { route: route.id, error: oneLine(e) }));
    }
  };

  const consider = (route: HttpRoute): Promise<void> | undefined => {
    if (stop.signal.aborted || !due(route, clock.now())) return inProgress.get(route.id);
    const work = order(route).finally(() => inProgress.delete(route.id));
    inProgress.set(route.id, work);
    return work;
  };

  const check = async (): Promise<void> => {
    const routes = (await store.listRoutes()).filter((r): r is HttpRoute => r.type === 'http' && r.acme !== undefined);
    await Promise.all(routes.map(consider));
  };

  // Follow route changes (a new `--acme` route is ordered at once) and look at everything each interval.
  const follow = (async () => {
    for await (const change of store.watchRoutes({ signal: stop.signal })) {
      if (change.type !== 'put' || change.route.type !== 'http' || !change.route.acme) continue;
      // The event may be our own write, seen after its order ended: decide on the route as it is now.
      const now = await store.getRoute(change.route.appId, change.route.id).catch(() => undefined);
      if (now?.type === 'http') void consider(now);
    }
  })().catch((err: unknown) => {
    if (!stop.signal.aborted) logger.warn('route watch ended', { error: oneLine(err) });
  });
  const tick = async () => {
    while (!stop.signal.aborted) {
      await check().catch((err: unknown) => logger.warn('acme check failed', { error: oneLine(err) }));
      await clock.sleep(o.checkIntervalMs, stop.signal).catch(() => undefined);
    }
  };
  const ticking = tick();

  const guard = new CloseGuard('acme client');
  const shutdown = async () => {
    stop.abort();
    // An order in flight is not cancellable (acme-client has no signal): give it a moment, then let it go.
    await settlesWithin(Promise.allSettled([follow, ticking, ...inProgress.values()]), 5_000);
    untrust?.();
  };
  return {
    check,
    close: () => guard.close(shutdown),
    [Symbol.asyncDispose]() {
      return guard.close(shutdown);
    },
  };
}
