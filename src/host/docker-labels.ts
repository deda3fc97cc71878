/** How a job's container is named and labelled: the project's labels, and the job spec kept in one (env names only). */
import type { RuntimeJobSpec } from './runtime.js';

/** Label names on every container this runtime creates. */
export const DOCKER_LABELS = Object.freeze({
  project: 'io.flynn-ts',
  host: 'io.flynn-ts.host',
  job: 'io.flynn-ts.job',
  app: 'io.flynn-ts.app',
  type: 'io.flynn-ts.type',
  release: 'io.flynn-ts.release',
  spec: 'io.flynn-ts.spec',
});

/** The job spec as kept in a label: env names only (values are secrets). */
export type LabelledSpec = RuntimeJobSpec & { envNames?: string[] };

export function labelSpec(spec: RuntimeJobSpec): LabelledSpec {
  return { ...spec, job: { ...spec.job, env: {} }, envNames: Object.keys(spec.job.env) };
}

/** The spec back from its label, its env values from the container's own env (`K=V` lines). */
export function specFromLabel(labelled: LabelledSpec, containerEnv: string[]): RuntimeJobSpec {
  const { envNames, ...spec } = labelled;
  if (envNames === undefined) return spec; // a container labelled before env left the label
  const values = new Map(containerEnv.map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as const));
  const env: Record<string, string> = {};
  for (const name of envNames) {
    const value = values.get(name);
    if (value !== undefined) env[name] = value;
  }
  return { ...spec, job: { ...spec.job, env } };
}

/** Container names are unique per engine: one host id + job id can never exist twice. */
export function containerName(hostId: string, jobId: string): string {
  return `flynn-${hostId}-${jobId}`;
}
