import { parse as parseYaml } from 'yaml';
import { SlugInputError } from './errors.js';

const TYPE_RE = /^[A-Za-z0-9_-]+$/;

/** `web: node server.js` lines → `{ web: 'node server.js' }`. Comments and blank lines are skipped. */
export function parseProcfile(text: string): Record<string, string> {
  const types: Record<string, string> = {};
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '' || line.trim().startsWith('#')) continue;
    const m = /^\s*([^:\s]+)\s*:\s*(.*)$/.exec(line);
    if (!m || !TYPE_RE.test(m[1]!) || m[2]!.trim() === '') {
      throw new SlugInputError(`Procfile line ${i + 1} is not "<type>: <command>": ${JSON.stringify(line)}`, { field: 'Procfile' });
    }
    types[m[1]!] = m[2]!.trim();
  }
  return types;
}

/** `default_process_types` from a buildpack's `bin/release` YAML; {} when it has none. */
export function parseRelease(text: string): Record<string, string> {
  if (text.trim() === '') return {};
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new SlugInputError(`bin/release printed invalid YAML: ${(err as Error).message}`, { cause: err });
  }
  const types = (doc as { default_process_types?: unknown } | null)?.default_process_types;
  if (types === undefined || types === null) return {};
  if (typeof types !== 'object' || Array.isArray(types)) throw new SlugInputError('bin/release: default_process_types is not a map');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(types)) {
    if (!TYPE_RE.test(k) || typeof v !== 'string') throw new SlugInputError(`bin/release: process type ${k} is not "<name>: <command string>"`);
    out[k] = v;
  }
  return out;
}
