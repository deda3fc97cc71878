import { channel } from 'node:diagnostics_channel';

/** A phase as the modules publish it: `{ phase, app?, jobId? }`. Subscribers take the time on receipt. */
export interface TracePhase {
  phase: string;
  app?: string;
  jobId?: string;
}

/**
 * A publisher of phases on the `node:diagnostics_channel` named `name` (`flynn-ts:<module>`), for
 * benchmarks and tracing. Free when nobody subscribes: the event is not even built then.
 */
export function tracer(name: string): (phase: string, ids?: { app?: string; jobId?: string }) => void {
  const ch = channel(name);
  return (phase, ids) => {
    if (ch.hasSubscribers) ch.publish({ phase, ...ids } satisfies TracePhase);
  };
}
