import { channel } from 'node:diagnostics_channel';

/**
 * Job start phases (`{ phase, jobId }`) are published on this `node:diagnostics_channel`, for
 * benchmarks and tracing; free when nobody subscribes. Subscribers take the time on receipt.
 */
export const HOST_TRACE_CHANNEL = 'flynn-ts:host';
const trace = channel(HOST_TRACE_CHANNEL);

export function traceHost(phase: string, jobId: string): void {
  if (trace.hasSubscribers) trace.publish({ phase, jobId });
}
