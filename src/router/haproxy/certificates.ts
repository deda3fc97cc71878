import { join } from 'node:path';
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
  private next = 0;

  constructor(
    private readonly api: RuntimeApi,
    private readonly dir: string,
    private readonly crtList: string,
  ) {}

  /** Make the loaded certificates those of `routes` (the first route of a domain wins, as with the node engine). */
  async sync(routes: HttpRoute[]): Promise<void> {
    const want = new Map<string, string>();
    for (const route of routes) if (route.tls && !want.has(route.domain)) want.set(route.domain, pem(route.tls));
    for (const [domain, cert] of this.loaded) if (!want.has(domain)) await this.remove(domain, cert.file);
    for (const [domain, text] of want) {
      const had = this.loaded.get(domain);
      if (had?.pem === text) continue;
      const file = had?.file ?? join(this.dir, `cert-${this.next++}.pem`);
      if (!had) await this.api.run(`new ssl cert ${file}`, { failure: FAILED });
      await this.api.run(`set ssl cert ${file}`, { payload: text, failure: FAILED });
      await this.api.run(`commit ssl cert ${file}`, { failure: FAILED });
      if (!had) await this.api.run(`add ssl crt-list ${this.crtList}`, { payload: `${file} ${domain}`, failure: FAILED });
      this.loaded.set(domain, { file, pem: text });
    }
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
