import { ACME_CHALLENGE_PATH } from '../acme-challenge.js';
import type { HttpRoute } from '../types.js';
import { LiveMap } from './maps.js';
import type { RuntimeApi } from './runtime-api.js';

/** The ACME HTTP-01 answers HAProxy returns itself (`acme.map`), following the routes' challenges. */
export class LiveAcmeAnswers {
  readonly map: LiveMap;
  private keys = new Set<string>();

  constructor(api: RuntimeApi, file: string) {
    this.map = new LiveMap(api, file);
  }

  async sync(routes: HttpRoute[]): Promise<void> {
    const want = new Map<string, string>();
    // The key is what the frontend looks up: host, then the path with a `/` appended.
    for (const r of routes) if (r.acmeChallenge) want.set(`${r.domain}${ACME_CHALLENGE_PATH}${r.acmeChallenge.token}/`, r.acmeChallenge.keyAuthorization);
    for (const key of this.keys) if (!want.has(key)) await this.map.delete(key);
    for (const [key, value] of want) await this.map.set(key, value);
    this.keys = new Set(want.keys());
  }
}
