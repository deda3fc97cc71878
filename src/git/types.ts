/** Types of the git receiver. Imports nothing else from the project. */

/** A client public key offered during SSH authentication. */
export interface OfferedKey {
  /** e.g. `ssh-ed25519`, `ssh-rsa`. */
  algo: string;
  /** The public key in SSH wire format. */
  blob: Buffer;
  /** `SHA256:<base64, no padding>`, as `ssh-keygen -lf` prints it. */
  fingerprint: string;
}

/** One updated ref of a push, as git's pre-receive hook reports it. */
export interface RefUpdate {
  oldRev: string;
  newRev: string;
  /** e.g. `refs/heads/main`. */
  ref: string;
}

/**
 * What a platform got ready for a push before its pack arrived (see `GitPlatform.preparePush`).
 * The receiver hands it to `deploy` as `Push.preparation` and disposes of it when the push ends,
 * deployed or not.
 */
export interface PushPreparation {
  /** Let go of whatever is still held. Idempotent; may be called after the deploy used it. */
  dispose(): Promise<void>;
}

/** A push to an app's default branch that the receiver hands to the platform. */
export interface Push {
  app: string;
  /** Fingerprint of the key that pushed. */
  fingerprint: string;
  /** The default-branch update that triggered the deploy. */
  update: RefUpdate;
  /** A tar of the pushed tree (`git archive`), to be built. */
  archive: NodeJS.ReadableStream;
  /** Lines written here reach the pusher as `remote:` lines, live. */
  output: (line: string) => void;
  signal: AbortSignal;
  /** What `GitPlatform.preparePush` returned for this push, if anything. */
  preparation?: PushPreparation;
}

/**
 * What a platform needs to build and deploy a tree: the part of a {@link Push} that says which app,
 * the tree, where the output goes and when to stop. Taffy hands over a tree fetched from a git URL
 * the same way.
 */
export type DeploySource = Pick<Push, 'app' | 'archive' | 'output' | 'signal' | 'preparation'>;
