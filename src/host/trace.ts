import { tracer } from '../common/trace.js';

/**
 * Job start phases (`{ phase, jobId }`) are published on this `node:diagnostics_channel`, for
 * benchmarks and tracing; free when nobody subscribes. Subscribers take the time on receipt.
 */
export const HOST_TRACE_CHANNEL = 'flynn-ts:host';
const publish = tracer(HOST_TRACE_CHANNEL);

export const traceHost = (phase: string, jobId: string) => publish(phase, { jobId });
