import { tracer } from '../common/trace.js';

/**
 * Deployment steps are published on this `node:diagnostics_channel` as `{ phase, app }` (tracing,
 * benchmarks): the deployer's `formation put` and `jobs up`, and `state <state>` right after each
 * step of a deployment is committed (see {@link DeployState}; tests kill the controller there).
 */
export const DEPLOYER_TRACE_CHANNEL = 'flynn-ts:deployer';
const publish = tracer(DEPLOYER_TRACE_CHANNEL);
export const traceDeployer = (phase: string, app: string) => publish(phase, { app });
