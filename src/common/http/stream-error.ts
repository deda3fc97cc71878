/**
 * An error in the middle of a stream (an SSE `error` event, an NDJSON `{ error }` line), after
 * the 200 went out: it travels as the same {@link WireError} as an HTTP error, plus the status its
 * kind answers with, and the client rebuilds the same class with {@link errorFromWire}.
 */
import { errorFromWire, FlynnError, type WireError } from '../errors.js';

/** What a stream carries for an error. */
export type StreamErrorData = WireError & { status: number };

/** `err` as a stream carries it; an error that is no {@link FlynnError} is an internal one, its message kept. */
export function streamError(err: unknown): StreamErrorData {
  if (err instanceof FlynnError) return { ...err.toWire(), status: err.status };
  return { code: 'FLYNN_ERR_INTERNAL', message: err instanceof Error ? err.message : String(err), retryable: false, status: 500 };
}

/** Rebuild the error a stream carried (parsed JSON, or the raw text when it is not JSON): the class the server threw. */
export function errorFromStream(data: unknown): FlynnError {
  let body = data;
  if (typeof data === 'string') {
    try {
      body = JSON.parse(data);
    } catch {
      body = { message: data };
    }
  }
  const { status, ...wire } = (typeof body === 'object' && body !== null ? body : { message: String(body) }) as { status?: unknown } & Record<string, unknown>;
  return errorFromWire(typeof status === 'number' ? status : 500, { code: 'FLYNN_ERR_STREAM', retryable: false, ...wire });
}
