import { isIP } from 'node:net';
import { DiscoveryErrorCodes as Codes, DiscoveryInputError } from './errors.js';
import { DISCOVERY_DEFAULTS, type RegisterOptions } from './types.js';

const SERVICE_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const HOSTNAME_RE = /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;
const PROTO_RE = /^[a-z][a-z0-9+.-]{0,15}$/;
const MAX_META_BYTES = 16 * 1024;

export function validateService(service: unknown): string {
  if (typeof service !== 'string' || !SERVICE_RE.test(service)) {
    throw new DiscoveryInputError(
      Codes.INVALID_SERVICE,
      `invalid service name ${JSON.stringify(service)}: use 1-63 lowercase letters, digits and dashes, not starting or ending with a dash`,
      { field: 'service' },
    );
  }
  return service;
}

/** `host:port` with an IPv4 address, `[v6]` address or hostname, and a port 1-65535. */
export function validateAddr(addr: unknown): string {
  const bad = () =>
    new DiscoveryInputError(Codes.INVALID_ADDR, `invalid addr ${JSON.stringify(addr)}: expected host:port, e.g. 127.0.0.1:8080`, { field: 'addr' });
  if (typeof addr !== 'string') throw bad();
  const match = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(addr);
  if (!match) throw bad();
  const host = match[1] as string;
  const port = Number(match[2]);
  if (port < 1 || port > 65535) throw bad();
  const hostOk = host.startsWith('[') ? isIP(host.slice(1, -1)) === 6 : isIP(host) === 4 || HOSTNAME_RE.test(host);
  if (!hostOk) throw bad();
  return addr;
}

export function validateMeta(meta: unknown): Record<string, string> {
  if (meta === undefined) return {};
  const bad = (why: string) => new DiscoveryInputError(Codes.INVALID_META, `invalid meta: ${why}`, { field: 'meta' });
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) throw bad('expected an object of strings');
  for (const [k, v] of Object.entries(meta)) {
    if (typeof v !== 'string') throw bad(`value of ${JSON.stringify(k)} must be a string`);
  }
  if (Buffer.byteLength(JSON.stringify(meta)) > MAX_META_BYTES) throw bad(`larger than ${MAX_META_BYTES} bytes`);
  return { ...(meta as Record<string, string>) };
}

/** Validate everything a registration carries and fill in defaults. */
export function validateRegistration(options: RegisterOptions): Required<RegisterOptions> {
  const ttlMs = options.ttlMs ?? DISCOVERY_DEFAULTS.ttlMs;
  if (!Number.isInteger(ttlMs) || ttlMs < 1000 || ttlMs > 3_600_000) {
    throw new DiscoveryInputError(Codes.INVALID_TTL, `invalid ttlMs ${JSON.stringify(options.ttlMs)}: expected whole milliseconds from 1000 to 3600000`, { field: 'ttlMs' });
  }
  const proto = options.proto ?? 'http';
  if (typeof proto !== 'string' || !PROTO_RE.test(proto)) {
    throw new DiscoveryInputError(Codes.INVALID_PROTO, `invalid proto ${JSON.stringify(proto)}: expected e.g. http or tcp`, { field: 'proto' });
  }
  return {
    service: validateService(options.service),
    addr: validateAddr(options.addr),
    proto,
    meta: validateMeta(options.meta),
    ttlMs,
  };
}
