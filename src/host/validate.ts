import { isIP } from 'node:net';
import { SHA256_HEX } from '../common/sha256-tap.js';
import { HostErrorCodes, HostInputError } from './errors.js';
import type { JobPort, JobSpec, JobVolume } from './types.js';

const ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,99}$/;
const SERVICE_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const ENV_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringMap(v: unknown, field: string, keyRe?: RegExp): Record<string, string> {
  if (v === undefined) return {};
  if (!isObject(v)) throw new HostInputError(`${field} must be an object of strings`, field);
  for (const [k, val] of Object.entries(v)) {
    if (typeof val !== 'string') throw new HostInputError(`${field}.${k} must be a string`, `${field}.${k}`);
    if (keyRe && !keyRe.test(k)) throw new HostInputError(`${field} key ${JSON.stringify(k)} is not a valid name`, `${field}.${k}`);
  }
  return { ...(v as Record<string, string>) };
}

function name(v: unknown, field: string, re = NAME_RE): string {
  if (typeof v !== 'string' || !re.test(v)) throw new HostInputError(`${field} must match ${re.source}, got ${JSON.stringify(v)}`, field);
  return v;
}

function positiveInt(v: unknown, field: string, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max) throw new HostInputError(`${field} must be an integer from 1 to ${max}`, field);
  return v;
}

/** What a job spec might ask of the host that no job gets: jobs run unprivileged (docs/security.md). */
const HOST_ACCESS = ['privileged', 'mounts', 'binds', 'network', 'networkMode', 'hostNetwork', 'pid', 'ipc', 'capAdd', 'capabilities', 'devices', 'user', 'securityOpt'];

/** Check a job spec from a caller (library or HTTP) and return a normalized copy. */
export function validateJobSpec(input: unknown): JobSpec {
  if (!isObject(input)) throw new HostInputError('a job must be a JSON object', 'job');
  const asked = HOST_ACCESS.find((k) => input[k] !== undefined);
  if (asked !== undefined) throw new HostInputError(`${asked}: a job cannot ask for host access (jobs run as an unprivileged user without capabilities, mounts or host networking)`, asked);
  const cmd = input.cmd;
  if (!Array.isArray(cmd) || cmd.length === 0 || cmd.some((c) => typeof c !== 'string') || cmd[0] === '') {
    throw new HostInputError('cmd must be a non-empty array of strings', 'cmd');
  }
  const ports: JobPort[] = [];
  if (input.ports !== undefined && !Array.isArray(input.ports)) throw new HostInputError('ports must be an array', 'ports');
  for (const [i, p] of ((input.ports as unknown[] | undefined) ?? []).entries()) {
    if (!isObject(p)) throw new HostInputError(`ports.${i} must be an object`, `ports.${i}`);
    const port: JobPort = { port: positiveInt(p.port, `ports.${i}.port`, 65535), proto: 'tcp' };
    if (p.proto !== undefined && p.proto !== 'tcp' && p.proto !== 'udp') throw new HostInputError(`ports.${i}.proto must be tcp or udp`, `ports.${i}.proto`);
    if (p.proto === 'udp') port.proto = 'udp';
    if (p.service !== undefined) port.service = name(p.service, `ports.${i}.service`, SERVICE_RE);
    ports.push(port);
  }
  const limits = input.limits ?? {};
  if (!isObject(limits)) throw new HostInputError('limits must be an object', 'limits');
  const spec: JobSpec = {
    id: name(input.id, 'id', ID_RE),
    app: name(input.app, 'app'),
    release: name(input.release, 'release'),
    type: name(input.type, 'type'),
    cmd: [...(cmd as string[])],
    env: stringMap(input.env, 'env', ENV_RE),
    ports,
    limits: {},
    meta: stringMap(input.meta, 'meta'),
  };
  if (input.image !== undefined) {
    if (typeof input.image !== 'string' || !/^[a-zA-Z0-9][a-zA-Z0-9_.\-/:@]{0,254}$/.test(input.image)) throw new HostInputError('image must be an image reference', 'image');
    spec.image = input.image;
  }
  if (limits.memoryBytes !== undefined) {
    if (typeof limits.memoryBytes !== 'number' || !Number.isInteger(limits.memoryBytes) || limits.memoryBytes < 6 * 1024 * 1024) {
      throw new HostInputError('limits.memoryBytes must be an integer of at least 6 MiB', 'limits.memoryBytes');
    }
    spec.limits.memoryBytes = limits.memoryBytes;
  }
  if (limits.cpuShares !== undefined) spec.limits.cpuShares = positiveInt(limits.cpuShares, 'limits.cpuShares', 262144);
  if (input.oneOff !== undefined) {
    if (typeof input.oneOff !== 'boolean') throw new HostInputError('oneOff must be a boolean', 'oneOff');
    spec.oneOff = input.oneOff;
  }
  for (const field of ['stdin', 'tty'] as const) {
    if (input[field] === undefined) continue;
    if (typeof input[field] !== 'boolean') throw new HostInputError(`${field} must be a boolean`, field);
    spec[field] = input[field];
  }
  if (spec.tty === true && spec.stdin !== true) throw new HostInputError('tty needs stdin', 'tty');
  for (const field of ['artifact', 'imageArchive'] as const) {
    if (input[field] === undefined) continue;
    const artifact = input[field] as { url?: unknown; sha256?: unknown } | null;
    if (typeof artifact !== 'object' || artifact === null || typeof artifact.url !== 'string' || !/^https?:\/\/[^\s]+$/.test(artifact.url)) {
      throw new HostInputError(`${field} must be { url } with an http(s) URL`, `${field}.url`);
    }
    if (artifact.sha256 !== undefined && (typeof artifact.sha256 !== 'string' || !SHA256_HEX.test(artifact.sha256))) {
      throw new HostInputError(`${field}.sha256 must be 64 lowercase hex digits`, `${field}.sha256`);
    }
    spec[field] = { url: artifact.url, ...(artifact.sha256 === undefined ? {} : { sha256: artifact.sha256 }) };
  }
  if (input.volumes !== undefined) spec.volumes = jobVolumes(input.volumes);
  if (input.alias !== undefined) spec.alias = name(input.alias, 'alias', ALIAS_RE);
  return spec;
}

const VOLUME_RE = /^[a-z0-9][a-z0-9_.-]{0,62}$/;
/** A DNS name: labels of letters, digits and dashes. */
const ALIAS_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

export function validateVolumeName(v: unknown, field = 'name'): string {
  if (typeof v !== 'string' || !VOLUME_RE.test(v)) throw new HostInputError(`${field} must be 1-63 lowercase letters, digits, '-', '_' or '.', starting with a letter or digit, got ${JSON.stringify(v)}`, field);
  return v;
}

/** Named volumes with absolute, distinct targets (not `/`, no `..`, not where the runtime mounts the artifact). */
function jobVolumes(v: unknown): JobVolume[] {
  if (!Array.isArray(v)) throw new HostInputError('volumes must be an array of { name, target }', 'volumes');
  const targets = new Set<string>();
  return v.map((entry: unknown, i) => {
    if (!isObject(entry)) throw new HostInputError(`volumes.${i} must be { name, target }`, `volumes.${i}`);
    const volume: JobVolume = { name: validateVolumeName(entry.name, `volumes.${i}.name`), target: '' };
    const target = entry.target;
    if (typeof target !== 'string' || !/^\/[^\0:]*$/.test(target) || target === '/' || target.split('/').includes('..') || target.startsWith('/flynn')) {
      throw new HostInputError(`volumes.${i}.target must be an absolute path other than / and /flynn (no '..' or ':'), got ${JSON.stringify(target)}`, `volumes.${i}.target`);
    }
    if (targets.has(target)) throw new HostInputError(`volumes.${i}.target ${target} is mounted twice`, `volumes.${i}.target`);
    targets.add(target);
    volume.target = target;
    if (entry.readOnly !== undefined) {
      if (typeof entry.readOnly !== 'boolean') throw new HostInputError(`volumes.${i}.readOnly must be a boolean`, `volumes.${i}.readOnly`);
      volume.readOnly = entry.readOnly;
    }
    return volume;
  });
}

/** Host ids end up in container names and discovery meta. */
export function validateHostId(id: unknown): string {
  if (typeof id !== 'string' || !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(id)) {
    throw new HostInputError(`host id must be 1-63 lowercase letters, digits and dashes, got ${JSON.stringify(id)}`, 'id', HostErrorCodes.INVALID_CONFIG);
  }
  return id;
}

export function validateAdvertiseAddr(addr: unknown): string {
  if (typeof addr !== 'string' || isIP(addr) !== 4) {
    throw new HostInputError(`advertiseAddr must be an IPv4 address, got ${JSON.stringify(addr)}`, 'advertiseAddr', HostErrorCodes.INVALID_CONFIG);
  }
  return addr;
}
