import type { RuntimeApi } from './runtime-api.js';

const FAILED = /not found|unknown|error|cannot|can't/i;

/** One map file as HAProxy holds it, changed with `add/set/del map` and mirrored here (`add map` would add a duplicate). */
export class LiveMap {
  private readonly entries = new Map<string, string>();

  constructor(
    private readonly api: RuntimeApi,
    readonly file: string,
  ) {}

  get(key: string): string | undefined {
    return this.entries.get(key);
  }

  async set(key: string, value: string): Promise<void> {
    const had = this.entries.get(key);
    if (had === value) return;
    await this.api.run(`${had === undefined ? 'add' : 'set'} map ${this.file} ${key} ${value}`, { failure: FAILED });
    this.entries.set(key, value);
  }

  async delete(key: string): Promise<void> {
    if (!this.entries.has(key)) return;
    await this.api.run(`del map ${this.file} ${key}`, { failure: FAILED });
    this.entries.delete(key);
  }

  /** The file's text as HAProxy holds it (written out before a reload). */
  text(): string {
    return [...this.entries].map(([key, value]) => `${key} ${value}\n`).join('');
  }

  /** Set `key` to `value`, or remove it when `value` is undefined. */
  async put(key: string, value: string | undefined): Promise<void> {
    if (value === undefined) await this.delete(key);
    else await this.set(key, value);
  }
}
