import { join } from 'node:path';
import type { Logger } from '../../common/logger.js';
import type { CertificatePair } from '../certificate.js';
import type { HttpRoute } from '../types.js';
import type { RuntimeApi } from './runtime-api.js';

const FAILED = /error|fail|can't|cannot|unknown|not found|no such/i;

/** One PEM holding a certificate (chain) and its key, as HAProxy loads them, without empty lines (the Runtime API payload ends at one). */
export function pem(pair: CertificatePair): string {
  return `${pair.cert.trim()}\n${pair.key.trim()}\n`.replace(/\n\s*\n/g, '\n');
}

/**
 * The route certificates in HAProxy's crt-list, chosen by SNI (exact names and `*.` wildcards):
 * added, replaced and removed with `new/set/commit/del ssl cert` and `add/del ssl crt-list`.
 */
export class LiveCertificates {
  /** domain → the in-memory file name and the PEM loaded under it. */
  private readonly loaded = new Map<string, { file: string; pem: string }>();
  /** domain → the PEM HAProxy refused, not tried again until the route's pair changes. */
  private readonly refused = new Map<string, string>();
  private next = 0;

  constructor(
    private readonly api: RuntimeApi,
    private readonly dir: string,
    private readonly crtList: string,
    private readonly logger: Logger,
  ) {}

  /** Make the loaded certificates those of `routes` (the first route of a domain wins, as with the node engine). */
  async sync(routes: HttpRoute[]): Promise<void> {
    const want = new Map<string, string>();
    for (const route of routes) if (route.tls && !want.has(route.domain)) want.set(route.domain, pem(route.tls));
    for (const [domain, cert] of this.loaded) if (!want.has(domain)) await this.remove(domain, cert.file);
    for (const domain of this.refused.keys()) if (!want.has(domain)) this.refused.delete(domain);
    for (const [domain, text] of want) {
      const had = this.loaded.get(domain);
      if (had?.pem === text || this.refused.get(domain) === text) continue;
      await this.load(domain, text, had?.file);
    }
  }

  /**
   * Load one domain's pair. A pair HAProxy refuses (a key that does not match) is logged once and
   * left out; its transaction is aborted, or HAProxy would refuse every later certificate while it
   * stays open. The domain keeps the pair it had, else the default certificate.
   */
  private async load(domain: string, text: string, had: string | undefined): Promise<void> {
    const file = had ?? join(this.dir, `cert-${this.next++}.pem`);
    if (!had) await this.api.run(`new ssl cert ${file}`, { failure: FAILED });
    try {
      await this.api.run(`set ssl cert ${file}`, { payload: text, failure: FAILED });
      await this.api.run(`commit ssl cert ${file}`, { failure: FAILED });
    } catch (err) {
      await this.api.run(`abort ssl cert ${file}`).catch(() => undefined);
      if (!had) await this.api.run(`del ssl cert ${file}`).catch(() => undefined);
      this.refused.set(domain, text);
      this.logger.error('route certificate rejected', { domain, error: (err as Error).message });
      return;
    }
    this.refused.delete(domain);
    if (!had) await this.api.run(`add ssl crt-list ${this.crtList}`, { payload: `${file} ${domain}`, failure: FAILED });
    this.loaded.set(domain, { file, pem: text });
  }

  /** The loaded certificates as files and crt-list lines (written out before a reload; the default's line comes first). */
  files(): { file: string; pem: string; line: string }[] {
    return [...this.loaded].map(([domain, { file, pem }]) => ({ file, pem, line: `${file} ${domain}` }));
  }

  private async remove(domain: string, file: string): Promise<void> {
    this.loaded.delete(domain);
    await this.api.run(`del ssl crt-list ${this.crtList} ${file}`, { failure: FAILED });
    await this.api.run(`del ssl cert ${file}`, { failure: FAILED });
  }
}
