import type { Logger } from '../common/logger.js';

/**
 * What a start has opened so far, closed last first: when the start fails part way, or once when
 * its handle is closed. A close that fails is logged and the others still run.
 */
export class CloseStack {
  private readonly closers: (() => Promise<unknown>)[] = [];
  private closing: Promise<void> | undefined;

  constructor(private readonly logger: Logger) {}

  push(close: () => Promise<unknown>): void {
    this.closers.push(close);
  }

  /** Close everything pushed, in reverse order. Idempotent: later calls get the first call's promise. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const close of this.closers.splice(0).reverse()) {
        await close().catch((err: unknown) => this.logger.warn('close failed', { err: (err as Error).message }));
      }
    })();
    return this.closing;
  }
}
