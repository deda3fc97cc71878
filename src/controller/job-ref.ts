/**
 * Job references as users type them: a full job id, or a unique prefix of one as `flynn log`
 * prints it (`a8d84235`, or `web.a8d84235` as a log line names it). Resolved here, in the controller, so every client (the
 * CLI, scripts) takes the same short ids.
 */
import { AmbiguousJobError, ControllerInputError } from './errors.js';
import type { JobRunner } from './jobs.js';

/** The shortest prefix accepted: the 8 characters the logs show. */
export const JOB_PREFIX_MIN = 8;

/**
 * The full id of the app's job that `ref` names: itself when it is a listed id, the one listed id
 * it is a prefix of, else `ref` unchanged (the runner then answers for it, e.g. a finished job's
 * logs by full id, or its own 404). A prefix of several jobs is an {@link AmbiguousJobError}.
 */
export async function resolveJobId(jobs: Pick<JobRunner, 'listJobs'>, appId: string, given: string): Promise<string> {
  const live = await jobs.listJobs(appId);
  // A prefix of no live job may name one that ended (e.g. `flynn log` of a crashed job after a restart).
  const listed = live.some((j) => j.id.startsWith(given.slice(given.indexOf('.') + 1))) ? live : await jobs.listJobs(appId, { all: true });
  const ids = listed.map((j) => j.id);
  if (ids.includes(given)) return given;
  // `web.a8d84235`, exactly as a log line names the job: the type, a dot, then the id's start.
  const dot = given.indexOf('.');
  const ref = dot > 0 && listed.some((j) => j.type === given.slice(0, dot)) ? given.slice(dot + 1) : given;
  if (ids.includes(ref)) return ref;
  const matches = ids.filter((id) => id.startsWith(ref));
  if (matches.length === 0) return ref;
  if (ref.length < JOB_PREFIX_MIN) throw new ControllerInputError('job', `job id prefix ${JSON.stringify(ref)} is too short: give at least ${JOB_PREFIX_MIN} characters of the job id`);
  if (matches.length > 1) throw new AmbiguousJobError(ref, matches.sort());
  return matches[0] as string;
}
