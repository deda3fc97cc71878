/** This machine's apt sources and os-release as the stack image reads them: one-line and deb822 source files, the release's own Debian entries. */

/** One apt source entry, one suite. */
export interface AptSource {
  type: 'deb' | 'deb-src';
  uri: string;
  suite: string;
  components: string[];
}

/** Parse a one-line-style sources.list (`deb [opts] URI SUITE COMPONENT...`). */
export function parseOneLineSources(text: string): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').replace(/\[[^\]]*\]/, ' ').trim();
    const [type, uri, suite, ...components] = line.split(/\s+/);
    if ((type === 'deb' || type === 'deb-src') && uri && suite) out.push({ type, uri, suite, components });
  }
  return out;
}

/** Parse a deb822 `.sources` file (stanzas of `Types`, `URIs`, `Suites`, `Components`, `Enabled`). */
export function parseDeb822Sources(text: string): AptSource[] {
  const out: AptSource[] = [];
  for (const stanza of text.split(/\n[ \t]*\n/)) {
    const fields = new Map<string, string>();
    let last: string | undefined;
    for (const line of stanza.split('\n')) {
      if (line.startsWith('#')) continue;
      if (/^[ \t]/.test(line) && last !== undefined) {
        fields.set(last, `${fields.get(last)} ${line.trim()}`); // a continuation line
        continue;
      }
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
      if (!m) continue;
      last = m[1]!.toLowerCase();
      fields.set(last, m[2]!.trim());
    }
    if (/^(no|false)$/i.test(fields.get('enabled') ?? '')) continue;
    const words = (field: string) => (fields.get(field) ?? '').split(/\s+/).filter(Boolean);
    for (const type of words('types')) {
      if (type !== 'deb' && type !== 'deb-src') continue;
      for (const uri of words('uris')) for (const suite of words('suites')) out.push({ type, uri, suite, components: words('components') });
    }
  }
  return out;
}

/** The binary entries of the release itself, its `-updates` and its `-security` suite: no third-party repos, no backports. */
export function debianSources(sources: AptSource[], codename: string): AptSource[] {
  const suites = new Set([codename, `${codename}-updates`, `${codename}-security`]);
  const seen = new Set<string>();
  return sources.filter((s) => {
    const key = `${s.uri} ${s.suite}`;
    if (s.type !== 'deb' || !suites.has(s.suite) || s.components.length === 0 || seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** `VERSION_ID` and `VERSION_CODENAME` of an os-release file. */
export function parseOsRelease(text: string): { versionId?: string; codename?: string } {
  const get = (key: string) => new RegExp(`^${key}=("?)([^"\\n]*)\\1$`, 'm').exec(text)?.[2] || undefined;
  const versionId = get('VERSION_ID');
  const codename = get('VERSION_CODENAME');
  return { ...(versionId ? { versionId } : {}), ...(codename ? { codename } : {}) };
}
