/** Domain types of the scheduler: formations (desired state), jobs, events and the view. Imports nothing else from the project. */

/** Job states as the host agents report them. */
export type JobState = 'pending' | 'starting' | 'up' | 'stopping' | 'down' | 'crashed' | 'failed';

/** States in which a job counts towards its formation (it runs or is on its way to running). */
export const LIVE_STATES: ReadonlySet<JobState> = new Set(['pending', 'starting', 'up']);

/** What to run for one process type: the template every job of the type is started from. */
export interface ProcessSpec {
  /** Container image, e.g. `flynn-ts/runtime:latest`. */
  image: string;
  /** Command line, e.g. `['start', 'web']`. */
  cmd: string[];
  /** Extra environment for this type (merged over the formation's `env`). */
  env?: Record<string, string>;
  /**
   * Ports the job listens on, e.g. `[{ port: 8080, service: 'shop-web' }]`. With `service`, the host
   * registers the job's bound address under it in discovery while the job is up (the router's backends).
   */
  ports?: { port: number; proto?: 'tcp' | 'udp'; service?: string }[];
  /** A file the host fetches before starting the job and hands to it (a slug: see the host's `JobSpec.artifact`). */
  artifact?: { url: string; sha256?: string };
  /** The `docker save` archive of `image`, loaded by a host whose engine lacks it (see the host's `JobSpec.imageArchive`). */
  imageArchive?: { url: string };
  /**
   * An interactive one-off job (`flynn run`): `pipe` keeps its stdin open for an attach to the
   * host agent, `tty` also gives it a pseudo-terminal. Default none.
   */
  stdio?: 'pipe' | 'tty';
  /**
   * Host volumes mounted into each job (the host's `JobSpec.volumes`): a volume lives on one host,
   * so pin the type there with the {@link HOST_ID_TAG} tag. Default none.
   */
  volumes?: { name: string; target: string; readOnly?: boolean }[];
  /** A name other jobs reach the job by (the host's `JobSpec.alias`). Default none. */
  alias?: string;
}

/**
 * A tag every host carries implicitly with its id as the value: `tags: { db: { [HOST_ID_TAG]: 'host1' } }`
 * pins a type to one host (e.g. the host that has its volume). Such a job waits for that host
 * when it is gone instead of moving (its data is there).
 */
export const HOST_ID_TAG = 'flynn.host-id';

/**
 * The desired state of one release of one app: how many jobs of each process type run, where they
 * may run and what they run. Scaling a type to 0 (or deleting the formation) stops its jobs.
 */
export interface Formation {
  app: string;
  release: string;
  /** Process type → job count. For an omni type the count is per host. */
  processes: Record<string, number>;
  /** Types that run `processes[type]` jobs on every (matching) host, including hosts that join later. */
  omni?: string[];
  /** Type → host tags every one of its jobs needs, e.g. `{ web: { disk: 'ssd' } }`. */
  tags?: Record<string, Record<string, string>>;
  /** Type → memory reserved per job, in bytes. Default 0 (no reservation). */
  memory?: Record<string, number>;
  /** Environment given to every job of the release. */
  env?: Record<string, string>;
  /** Type → what its jobs run. A type scaled above 0 must have an entry. */
  spec: Record<string, ProcessSpec>;
}

/** `app/release`, the key of a formation. */
export type FormationKey = string;

export function formationKey(app: string, release: string): FormationKey {
  return `${app}/${release}`;
}

/** A job the scheduler knows of, as its view shows it. */
export interface ScheduledJob {
  id: string;
  hostId: string;
  app: string;
  release: string;
  type: string;
  state: JobState;
  /** A one-off job (`flynn run`): never counted in a formation, never restarted. */
  oneOff: boolean;
  /** How many crash restarts led to this job (0 for a first start). */
  restarts: number;
  memoryBytes: number;
  /** When the scheduler asked for it, ms since the epoch. */
  createdAt: number;
  /** When it was last seen `up`, ms since the epoch. */
  upAt?: number;
  /** When it ended (`down`, `crashed`, `failed`), ms since the epoch, as its host reports it. */
  endedAt?: number;
}

/** Why a job is not placed. */
export type BlockedReason = 'no-hosts' | 'tags' | 'capacity';

/** Why the scheduler stopped a job: scaled down, formation removed, or moved to an emptier host. */
export type StopReason = 'scale' | 'removed' | 'rebalance';

/** Every decision the scheduler takes, as callers of `events()` see it. */
export type SchedulerEvent =
  | { type: 'leader'; schedulerId: string; leading: boolean }
  | { type: 'host-up'; hostId: string; addr: string }
  | { type: 'host-lost'; hostId: string; jobIds: string[] }
  | { type: 'placed'; job: ScheduledJob }
  | { type: 'started'; job: ScheduledJob }
  | { type: 'stopped'; job: ScheduledJob; reason: StopReason }
  | { type: 'crashed'; job: ScheduledJob; state: JobState; restartInMs: number | null }
  | { type: 'restarted'; job: ScheduledJob; previousJobId: string }
  | { type: 'blocked'; app: string; release: string; processType: string; count: number; reason: BlockedReason }
  /** A job moved to a host that joined: `started` on `toHostId` is up, `stopped` on `fromHostId` is asked to stop. */
  | { type: 'rebalanced'; app: string; release: string; processType: string; fromHostId: string; toHostId: string; startedJobId: string; stoppedJobId: string }
  | { type: 'start-failed'; app: string; release: string; processType: string; hostId: string; message: string };

export type SchedulerEventType = SchedulerEvent['type'];

/** One host in the view. */
export interface HostView {
  id: string;
  addr: string;
  tags: Record<string, string>;
  memoryBytes: number;
  /** Memory reserved by the jobs the scheduler counts on this host. */
  reservedBytes: number;
  /** False until its job list was read. */
  ready: boolean;
  jobs: number;
}

/** One process type of a formation in the view. */
export interface ProcessView {
  type: string;
  desired: number;
  omni: boolean;
  jobs: ScheduledJob[];
  /** Jobs that fit on no host right now. */
  blocked: number;
  /** Crash restarts waiting for their backoff delay. */
  restartsPending: number;
}

export interface FormationView {
  app: string;
  release: string;
  processes: ProcessView[];
}

/** What `flynn ps` shows: known only to the leader; a follower answers with `leading: false` and empty lists. */
export interface SchedulerView {
  schedulerId: string;
  leading: boolean;
  hosts: HostView[];
  formations: FormationView[];
  /** Running one-off jobs. */
  oneOff: ScheduledJob[];
}
