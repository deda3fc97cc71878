/** Wire and domain types of the host agent (flynn-host). Imports nothing else from the project. */

/** One port a job listens on inside its container (or as a process). */
export interface JobPort {
  /** Port the job listens on, 1-65535. For the process runtime the job must listen on `PORT`. */
  port: number;
  /** `tcp` (default) or `udp`. */
  proto: 'tcp' | 'udp';
  /** When set, the agent registers `advertiseAddr:hostPort` under this discovery service while the job is up. */
  service?: string;
}

/** Resource limits. Missing fields mean unlimited. */
export interface JobLimits {
  /** Memory cap in bytes. Docker: cgroup limit with no swap. Process: RSS watchdog (see docs/host.md). */
  memoryBytes?: number;
  /** Relative CPU weight (Docker `CpuShares`, 1024 = one normal share). Not enforced by the process runtime. */
  cpuShares?: number;
}

/** What a caller asks the agent to run. */
export interface JobSpec {
  /** Unique job id: 1-64 of `[a-zA-Z0-9_.-]`, starting with a letter or digit. */
  id: string;
  app: string;
  release: string;
  /** Process type, e.g. `web`. */
  type: string;
  /** Docker image; the runtime's default image when absent. The process runtime ignores it (runs `cmd` on the host). */
  image?: string;
  /** Command and arguments; at least one element. */
  cmd: string[];
  env: Record<string, string>;
  ports: JobPort[];
  limits: JobLimits;
  meta: Record<string, string>;
  /** A one-off job (`flynn run`): never registered under a service. */
  oneOff?: boolean;
  /**
   * A slug the agent downloads on the host before starting the job and hands to it, so the job
   * never has to reach the URL itself (a container on the bridge network cannot reach a shelf on
   * the host's loopback). Docker: bind-mounted read-only at `/flynn/slug.tgz` with
   * `SLUG_URL=file:///flynn/slug.tgz`; process: `SLUG_URL=file://<path on the host>`.
   */
  artifact?: JobArtifact;
  /**
   * The `docker save` archive of `image` (a Dockerfile app's, pinned by id): the agent `docker
   * load`s it when its engine lacks the image, and checks the loaded id (host/image-archive.ts).
   * Ignored by the process runtime.
   */
  imageArchive?: JobArtifact;
  /**
   * Keep the job's stdin open for one attach (`GET /jobs/:id/attach`, see docs/host.md): an
   * interactive one-off job. Its output before the attach is kept for it (Docker).
   */
  stdin?: boolean;
  /** Give the job a pseudo-terminal (needs `stdin`): Docker's `Tty`; on the process runtime a pty relayed by python3 (docs/host.md). */
  tty?: boolean;
  /**
   * Host volumes (see {@link Volume}) mounted into the job: Docker bind mounts at `target`, owned by
   * the job's user. A volume must exist on the host (`POST /volumes`); the process runtime refuses them.
   */
  volumes?: JobVolume[];
  /**
   * A name other jobs reach this one by (Docker: a DNS alias on the runtime's job network, e.g.
   * `postgres.flynn`). Default none.
   */
  alias?: string;
}

/** A volume a job mounts. */
export interface JobVolume {
  /** The volume's name on the host. */
  name: string;
  /** Absolute path inside the job. */
  target: string;
  readOnly?: boolean;
}

/** A named directory the host agent keeps under its data dir across job and agent restarts. */
export interface Volume {
  /** 1-63 lowercase letters, digits, `-`, `_` and `.`, starting with a letter or digit. */
  name: string;
  hostId: string;
  /** Where its data is on the host. */
  path: string;
  /** ISO timestamp. */
  createdAt: string;
}

/** A file fetched by the agent for a job (see {@link JobSpec.artifact}). */
export interface JobArtifact {
  /** `http(s)://` URL the agent can reach (e.g. a shelf on the host's loopback). */
  url: string;
  /**
   * Its sha256 (64 lowercase hex digits): the agent hashes the file as it downloads it and fails
   * the job with an `ArtifactFetchError` naming both digests when they differ. Unchecked when absent.
   */
  sha256?: string;
}

/** A port as bound on the host. */
export interface BoundPort extends JobPort {
  /** The port on the host's advertised address. */
  hostPort: number;
}

export type JobState = 'pending' | 'starting' | 'up' | 'stopping' | 'down' | 'crashed' | 'failed';

/** The job state machine, in one place: the states each state may move to. */
export const JOB_TRANSITIONS: Readonly<Record<JobState, readonly JobState[]>> = Object.freeze({
  pending: ['starting', 'failed'],
  starting: ['up', 'failed', 'crashed', 'down', 'stopping'],
  up: ['stopping', 'down', 'crashed'],
  stopping: ['down', 'crashed'],
  down: [],
  crashed: [],
  failed: [],
});

/** States a job never leaves. */
export const TERMINAL_STATES: ReadonlySet<JobState> = new Set(['down', 'crashed', 'failed']);

export function canTransition(from: JobState, to: JobState): boolean {
  return JOB_TRANSITIONS[from].includes(to);
}

/** Why a job ended. */
/** `unknown`: a process job that ended while no agent watched it, leaving no exit code (its code is -1). */
export type ExitReason = 'exit' | 'oom' | 'killed' | 'unknown';

/** How a job's process ended. */
export interface ExitStatus {
  /** Exit code; 128+N when killed by signal N. */
  code: number;
  reason: ExitReason;
}

/** An error attached to a job that failed to start or crashed. */
export interface JobError {
  code: string;
  message: string;
}

/** A job as the agent reports it. */
export interface Job extends JobSpec {
  hostId: string;
  state: JobState;
  /** The ports as bound on the host, in the order of `ports`. */
  boundPorts: BoundPort[];
  /** ISO timestamps. */
  createdAt: string;
  updatedAt: string;
  exit?: ExitStatus;
  error?: JobError;
}

/** One line of a job's output. */
export interface LogLine {
  stream: 'stdout' | 'stderr';
  line: string;
  /** ISO timestamp of when the line was written. */
  time: string;
}

/** A job state change on the agent's event stream. `seq` increases by one per event. */
export interface JobEvent {
  seq: number;
  job: Job;
}

export interface HostCapacity {
  /** Memory the agent may hand out as job limits, in bytes. */
  memoryBytes: number;
}

/** `GET /status`. */
export interface HostStatus {
  id: string;
  /** `host:port` of the agent's API. */
  addr: string;
  advertiseAddr: string;
  tags: Record<string, string>;
  capacity: HostCapacity;
  /** Memory promised to live jobs through their limits. */
  allocatedMemoryBytes: number;
  jobs: number;
  runtime: string;
}
