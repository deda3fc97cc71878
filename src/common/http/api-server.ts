import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import { answerPlainHttp } from '../tls/plain-http-guard.js';
import type { TlsCredentials } from '../tls/self-signed.js';
import { FlynnError, type WireError } from '../errors.js';
import { keyChecker } from './key-auth.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';

export interface ApiServerOptions {
  /** Logs 5xx errors. Default silent. */
  logger?: Logger;
  /** Largest JSON request body accepted, in bytes (413 naming it beyond). Default 1 MiB. */
  bodyLimit?: number;
  /** Serve HTTPS with this certificate and key. Default: plain HTTP. */
  tls?: TlsCredentials;
  /** With `tls`: the message a plain-HTTP request gets (a 400 `FLYNN_ERR_HTTPS_REQUIRED`). */
  httpsHint?: () => string;
}

/**
 * A fastify instance speaking the flynn-ts HTTP error contract: every error, including malformed
 * JSON, schema violations and unknown routes, is answered as a JSON {@link WireError} with a 4xx/5xx
 * status; nothing crashes the process or hangs the client.
 */
export function createApiServer(options: ApiServerOptions = {}): FastifyInstance {
  const logger = options.logger ?? silentLogger;
  const app = Fastify({
    logger: false,
    ...(options.tls ? { https: { cert: options.tls.cert, key: options.tls.key } } : {}),
    bodyLimit: options.bodyLimit ?? 1024 * 1024,
    ajv: { customOptions: { allErrors: false, coerceTypes: false, removeAdditional: false } },
  }) as unknown as FastifyInstance;
  if (options.tls) answerPlainHttp(app.server as unknown as TlsServer, options.httpsHint ?? (() => 'this server speaks HTTPS: use an https:// URL'));

  app.setErrorHandler((error: FastifyError | FlynnError, _request, reply) => {
    if (error instanceof FlynnError) {
      if (error.status >= 500) logger.error('request failed', { code: error.code, err: error.message });
      return reply.status(error.status).send(error.toWire());
    }
    const body = fastifyErrorToWire(error, options.bodyLimit ?? 1024 * 1024);
    if (body.status >= 500) logger.error('request failed', { err: error.message, stack: error.stack });
    return reply.status(body.status).send(body.wire);
  });

  app.setNotFoundHandler((request, reply) => {
    const wire: WireError = {
      code: 'FLYNN_ERR_HTTP_NOT_FOUND',
      message: `no such endpoint: ${request.method} ${request.url.split('?')[0]}`,
      retryable: false,
    };
    return reply.status(404).send(wire);
  });

  return app;
}

function fastifyErrorToWire(error: FastifyError, bodyLimit: number): { status: number; wire: WireError } {
  if (error.validation) {
    const first = error.validation[0];
    const path = first?.instancePath ? first.instancePath.replace(/^\//, '').replace(/\//g, '.') : '';
    const params = first?.params as { missingProperty?: string; additionalProperty?: string } | undefined;
    const missing = params?.missingProperty;
    const field = [path, missing ?? params?.additionalProperty].filter(Boolean).join('.') || undefined;
    const where = error.validationContext ?? 'body';
    const message = field ? `invalid ${where}: ${field} ${missing ? 'is required' : first?.message ?? 'is invalid'}` : `invalid ${where}: ${first?.message ?? error.message}`;
    return { status: 400, wire: { code: 'FLYNN_ERR_INVALID_REQUEST', message, retryable: false, ...(field ? { detail: { field } } : {}) } };
  }
  const status = error.statusCode && error.statusCode >= 400 ? error.statusCode : 500;
  if (status === 400 && error.code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
    return { status, wire: { code: 'FLYNN_ERR_MALFORMED_JSON', message: 'request body is not valid JSON', retryable: false } };
  }
  if (error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
    return { status: 400, wire: { code: 'FLYNN_ERR_MALFORMED_JSON', message: 'request body is empty but JSON was declared', retryable: false } };
  }
  if (status === 413) return { status, wire: { code: 'FLYNN_ERR_TOO_LARGE', message: `request body is too large: the limit is ${bodyLimit} bytes`, retryable: false, detail: { limit: bodyLimit } } };
  if (status === 415) return { status, wire: { code: 'FLYNN_ERR_UNSUPPORTED_MEDIA_TYPE', message: error.message, retryable: false } };
  if (status < 500) return { status, wire: { code: `FLYNN_ERR_HTTP_${status}`, message: error.message, retryable: false } };
  return { status, wire: { code: 'FLYNN_ERR_INTERNAL', message: 'internal error', retryable: false } };
}

/** Listen and return the bound `host:port` (port 0 picks a free one). */
export async function listenApi(app: FastifyInstance, host: string, port: number): Promise<string> {
  await app.listen({ host, port });
  const address = app.server.address() as AddressInfo;
  return `${host}:${address.port}`;
}

/**
 * Refuse every request of `app` that does not present `key` (`Authorization: Bearer <key>`, or
 * Basic with the key as password), before any route runs: `refuse` makes the module's 401 error,
 * and the answer names the scheme and realm in `WWW-Authenticate`.
 */
export function requireKey(app: FastifyInstance, key: string, how: { scheme: 'Bearer' | 'Basic'; realm: string; refuse: (check: 'missing' | 'wrong') => FlynnError }): void {
  const checkKey = keyChecker(key);
  app.addHook('onRequest', async (request, reply) => {
    const check = checkKey(request.headers.authorization);
    if (check === 'ok') return;
    reply.header('www-authenticate', `${how.scheme} realm="${how.realm}"`);
    throw how.refuse(check);
  });
}
