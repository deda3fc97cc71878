import { createHash } from 'node:crypto';
import { ControllerInputError } from './errors.js';

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const DOMAIN = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
const SERVICE = /^[a-z0-9][a-z0-9-_.]{0,127}$/;

/** An app name is a lowercase DNS label (1-63 chars, a-z 0-9 -, no leading/trailing dash). */
export function validateAppName(name: string, field = 'name'): string {
  if (!DNS_LABEL.test(name)) throw new ControllerInputError(field, `${field} ${JSON.stringify(name)} is not a lowercase DNS label (a-z, 0-9, '-', 1-63 chars, no leading or trailing '-')`);
  return name;
}

export function validateEnvKey(key: string, field = 'env'): string {
  if (!ENV_KEY.test(key)) throw new ControllerInputError(field, `${field}: ${JSON.stringify(key)} is not a valid environment variable name`);
  return key;
}

/**
 * Names the platform sets in every job's environment itself: a value in an app's env would be
 * overridden in web jobs (PORT) or break the job (SLUG_URL, HOME), so the controller refuses them,
 * as Heroku refuses PORT. `FLYNN_*` is reserved as a whole for the platform's own variables.
 */
export const RESERVED_ENV: Readonly<Record<string, string>> = Object.freeze({
  PORT: 'the platform sets PORT to the port each web job must listen on',
  HOSTNAME: 'the platform sets HOSTNAME to the job id',
  HOME: 'the slug runner sets HOME to the app directory',
  SLUG_URL: "the platform sets SLUG_URL to the release's slug",
  APP_DIR: 'the platform sets APP_DIR to where the slug is unpacked',
});
export const RESERVED_ENV_PREFIX = 'FLYNN_';

/** Why `key` is the platform's to set, or undefined when an app may set it. */
export function reservedEnvReason(key: string): string | undefined {
  if (Object.hasOwn(RESERVED_ENV, key)) return RESERVED_ENV[key];
  if (key.startsWith(RESERVED_ENV_PREFIX)) return `${RESERVED_ENV_PREFIX}* names are reserved for the platform (FLYNN_APP, FLYNN_JOB_ID, ...)`;
  return undefined;
}

/** A key an app may set in its env: a valid name that the platform does not set itself. */
export function validateConfigKey(key: string, field = 'env'): string {
  validateEnvKey(key, field);
  const why = reservedEnvReason(key);
  if (why !== undefined) throw new ControllerInputError(field, `${key} cannot be set in an app's env: ${why}`);
  return key;
}

export function validateDomain(domain: string, field = 'domain'): string {
  if (domain.length > 253 || !DOMAIN.test(domain)) throw new ControllerInputError(field, `${field} ${JSON.stringify(domain)} is not a valid lowercase domain name`);
  return domain;
}

export function validatePath(path: string, field = 'path'): string {
  if (!path.startsWith('/') || /\s|\?|#/.test(path)) throw new ControllerInputError(field, `${field} ${JSON.stringify(path)} must start with '/' and hold no spaces, '?' or '#'`);
  return path;
}

export function validateService(service: string, field = 'service'): string {
  if (!SERVICE.test(service)) throw new ControllerInputError(field, `${field} ${JSON.stringify(service)} is not a valid service name`);
  return service;
}

export function validatePort(port: number, field = 'port'): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ControllerInputError(field, `${field} must be an integer in 1..65535`);
  return port;
}

export function validateUrl(url: string, field = 'url'): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ControllerInputError(field, `${field} ${JSON.stringify(url)} is not a URL`);
  }
  if (!['http:', 'https:', 'file:'].includes(parsed.protocol)) throw new ControllerInputError(field, `${field} must be an http, https or file URL`);
  return url;
}

/** A docker artifact's url: the image id in the hosts' engine, `sha256:<64 hex>`. */
export function validateImageId(id: string, field = 'url'): string {
  if (!/^sha256:[0-9a-f]{64}$/.test(id)) throw new ControllerInputError(field, `${field} of a docker artifact must be an image id (sha256:<64 hex digits>), got ${JSON.stringify(id)}`);
  return id;
}

export interface ParsedKey {
  type: string;
  blob: Buffer;
  comment: string;
  /** `SHA256:<base64 without padding>` */
  fingerprint: string;
  /** hex SHA-256 of the blob */
  id: string;
  /** normalized `<type> <base64> [comment]` */
  line: string;
}

const KEY_TYPES = new Set(['ssh-rsa', 'ssh-ed25519', 'ssh-dss', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'sk-ssh-ed25519@openssh.com', 'sk-ecdsa-sha2-nistp256@openssh.com']);

/** Parse an OpenSSH public key line and compute its SHA256 fingerprint (as `ssh-keygen -lf`). */
export function parsePublicKey(text: string, field = 'key'): ParsedKey {
  const parts = text.trim().split(/\s+/);
  const [type, b64, ...rest] = parts;
  if (!type || !b64 || !KEY_TYPES.has(type)) throw new ControllerInputError(field, `${field} is not an OpenSSH public key (expected "<type> <base64> [comment]" with a known type)`);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new ControllerInputError(field, `${field} has an invalid base64 body`);
  const blob = Buffer.from(b64, 'base64');
  // The blob starts with the key type as an SSH string: uint32 length + bytes.
  const len = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
  if (len <= 0 || 4 + len > blob.length || blob.subarray(4, 4 + len).toString('latin1') !== type) {
    throw new ControllerInputError(field, `${field} body does not match its type ${type}`);
  }
  const digest = createHash('sha256').update(blob).digest();
  const comment = rest.join(' ');
  return {
    type,
    blob,
    comment,
    fingerprint: 'SHA256:' + digest.toString('base64').replace(/=+$/, ''),
    id: digest.toString('hex'),
    line: [type, blob.toString('base64'), comment].filter(Boolean).join(' '),
  };
}
