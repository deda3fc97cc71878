import { SHA256_HEX } from '../common/sha256-tap.js';
import { SchedulerErrorCodes as Codes, SchedulerInputError } from './errors.js';
import type { Formation, ProcessSpec } from './types.js';

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;

/** Check a formation and return a frozen deep copy; throws a {@link SchedulerInputError} naming the bad field. */
export function validateFormation(input: unknown): Formation {
  const bad = (field: string, why: string) =>
    new SchedulerInputError(Codes.INVALID_FORMATION, `invalid formation: ${field} ${why}`, { field });
  if (!isObject(input)) throw bad('formation', 'must be an object');
  const f = input as Partial<Formation>;
  for (const field of ['app', 'release'] as const) {
    if (typeof f[field] !== 'string' || !NAME_RE.test(f[field])) throw bad(field, 'must be 1-63 letters, digits, dots, dashes or underscores');
  }
  if (!isObject(f.processes)) throw bad('processes', 'must map process types to counts');
  const processes: Record<string, number> = {};
  for (const [type, count] of Object.entries(f.processes)) {
    if (!NAME_RE.test(type)) throw bad(`processes.${type}`, 'is not a valid process type name');
    if (!Number.isInteger(count) || count < 0 || count > 10_000) throw bad(`processes.${type}`, 'must be a whole number from 0 to 10000');
    processes[type] = count;
  }
  const omni = f.omni ?? [];
  if (!Array.isArray(omni) || !omni.every((t) => typeof t === 'string')) throw bad('omni', 'must be a list of process types');
  const tags: Record<string, Record<string, string>> = {};
  if (f.tags !== undefined) {
    if (!isObject(f.tags)) throw bad('tags', 'must map process types to tag objects');
    for (const [type, t] of Object.entries(f.tags)) {
      if (!isObject(t) || !Object.values(t).every((v) => typeof v === 'string')) throw bad(`tags.${type}`, 'must map strings to strings');
      tags[type] = { ...(t as Record<string, string>) };
    }
  }
  const memory: Record<string, number> = {};
  if (f.memory !== undefined) {
    if (!isObject(f.memory)) throw bad('memory', 'must map process types to bytes');
    for (const [type, bytes] of Object.entries(f.memory)) {
      if (!Number.isInteger(bytes) || bytes < 0) throw bad(`memory.${type}`, 'must be a whole number of bytes ≥ 0');
      memory[type] = bytes;
    }
  }
  if (f.env !== undefined && !isStringRecord(f.env)) throw bad('env', 'must map strings to strings');
  if (!isObject(f.spec)) throw bad('spec', 'must map process types to { image, cmd }');
  const spec: Record<string, ProcessSpec> = {};
  for (const [type, s] of Object.entries(f.spec)) spec[type] = validateProcessSpec(s, `spec.${type}`);
  for (const [type, count] of Object.entries(processes)) {
    if (count > 0 && !spec[type]) throw bad(`spec.${type}`, 'is missing for a type scaled above 0');
  }
  const formation: Formation = { app: f.app as string, release: f.release as string, processes, spec };
  if (omni.length > 0) formation.omni = [...omni];
  if (Object.keys(tags).length > 0) formation.tags = tags;
  if (Object.keys(memory).length > 0) formation.memory = memory;
  if (f.env !== undefined) formation.env = { ...f.env };
  return deepFreeze(formation);
}

/** Check one process spec (also used for one-off jobs). */
export function validateProcessSpec(input: unknown, field = 'spec'): ProcessSpec {
  const bad = (why: string) => new SchedulerInputError(Codes.INVALID_FORMATION, `invalid ${field}: ${why}`, { field });
  if (!isObject(input)) throw bad('must be an object with image and cmd');
  const s = input as Partial<ProcessSpec>;
  if (typeof s.image !== 'string' || s.image === '') throw bad('image must be a non-empty string');
  if (!Array.isArray(s.cmd) || !s.cmd.every((c) => typeof c === 'string')) throw bad('cmd must be a list of strings');
  if (s.env !== undefined && !isStringRecord(s.env)) throw bad('env must map strings to strings');
  const spec: ProcessSpec = { image: s.image, cmd: [...s.cmd] };
  if (s.env !== undefined) spec.env = { ...s.env };
  if (s.ports !== undefined) {
    if (!Array.isArray(s.ports)) throw bad('ports must be a list');
    spec.ports = s.ports.map((p) => {
      if (!isObject(p) || !Number.isInteger(p.port) || p.port < 1 || p.port > 65535) throw bad('ports[].port must be 1-65535');
      if (p.proto !== undefined && p.proto !== 'tcp' && p.proto !== 'udp') throw bad('ports[].proto must be tcp or udp');
      if (p.service !== undefined && (typeof p.service !== 'string' || p.service === '')) throw bad('ports[].service must be a non-empty string');
      const port: { port: number; proto?: 'tcp' | 'udp'; service?: string } = { port: p.port };
      if (p.proto !== undefined) port.proto = p.proto;
      if (p.service !== undefined) port.service = p.service;
      return port;
    });
  }
  for (const field of ['artifact', 'imageArchive'] as const) {
    const a: { url: string; sha256?: unknown } | undefined = s[field];
    if (a === undefined) continue;
    if (!isObject(a) || typeof a.url !== 'string' || a.url === '') throw bad(`${field} must be { url } with a non-empty url`);
    if (a.sha256 !== undefined && (typeof a.sha256 !== 'string' || !SHA256_HEX.test(a.sha256))) throw bad(`${field}.sha256 must be 64 lowercase hex digits`);
    spec[field] = { url: a.url, ...(a.sha256 === undefined ? {} : { sha256: a.sha256 }) };
  }
  if (s.volumes !== undefined) {
    if (!Array.isArray(s.volumes) || !s.volumes.every((v) => isObject(v) && typeof v.name === 'string' && typeof v.target === 'string')) throw bad('volumes must be a list of { name, target }');
    spec.volumes = s.volumes.map((v) => ({ name: v.name, target: v.target, ...(v.readOnly === true ? { readOnly: true } : {}) }));
  }
  if (s.alias !== undefined) {
    if (typeof s.alias !== 'string' || s.alias === '') throw bad('alias must be a non-empty string');
    spec.alias = s.alias;
  }
  return spec;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isStringRecord(v: unknown): v is Record<string, string> {
  return isObject(v) && Object.values(v).every((x) => typeof x === 'string');
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
