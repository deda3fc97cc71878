/** The Docker engine's errors as the runtime's: its HTTP status, a container already gone, an unreachable engine. */
import { DockerUnavailableError, RuntimeError } from './errors.js';

export function statusOf(err: unknown): number | undefined {
  return (err as { statusCode?: number }).statusCode;
}

export function ignoreGone(err: unknown): void {
  const status = statusOf(err);
  if (status === 404 || status === 409) return; // gone or not running
  throw err;
}

export function dockerError(what: string, err: unknown): Error {
  const status = statusOf(err);
  const message = (err as { json?: { message?: string } }).json?.message ?? (err as Error).message;
  if (status === undefined) return new DockerUnavailableError(`${what}: the Docker engine is not reachable (${message})`, { cause: err });
  return new RuntimeError(`${what}: ${message}`, { cause: err });
}
