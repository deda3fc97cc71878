import { channel } from 'node:diagnostics_channel';

/**
 * Build phases are published on this `node:diagnostics_channel` as `{ phase, app? }` (for
 * benchmarks and tracing; free when nobody subscribes). Subscribers take the time on receipt.
 */
export const SLUG_TRACE_CHANNEL = 'flynn-ts:slug';
const trace = channel(SLUG_TRACE_CHANNEL);

export function traceSlug(phase: string, app?: string): void {
  if (trace.hasSubscribers) trace.publish({ phase, app });
}
