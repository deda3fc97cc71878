import { tracer } from '../common/trace.js';

/**
 * Build phases are published on this `node:diagnostics_channel` as `{ phase, app? }` (for
 * benchmarks and tracing; free when nobody subscribes). Subscribers take the time on receipt.
 */
export const SLUG_TRACE_CHANNEL = 'flynn-ts:slug';
const publish = tracer(SLUG_TRACE_CHANNEL);

export const traceSlug = (phase: string, app?: string) => publish(phase, app === undefined ? {} : { app });
