/**
 * HTTP/1.1 field lines (RFC 9112 §5, RFC 9110 §5.5) for the fast path's two parsers, scanned by
 * character code rather than split and matched with regexes (the header work is a few % of the
 * router's CPU per request). Strict: `token ":" OWS value OWS` per CRLF-ended line; a name that is
 * not a token, a space before the colon, an obs-fold line, or a control character (other than
 * HTAB) in a value, bare CR and LF included, fails the whole section.
 */

/** RFC 9110 `tchar`. */
const TOKEN = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TOKEN[c.charCodeAt(0)] = 1;

/** The start line (status or request line) of a head, and where its field lines begin. */
export function startLine(head: string): { line: string; fields: number } {
  const eol = head.indexOf('\r\n');
  return eol < 0 ? { line: head, fields: head.length } : { line: head.slice(0, eol), fields: eol + 2 };
}

/**
 * Parse the field lines of `text` from `from` to its end (lines separated by CRLF, no empty line),
 * pushing `name, value` pairs (names as sent, values trimmed) onto `out`. False if any is malformed.
 */
export function parseFields(text: string, from: number, out: string[]): boolean {
  const len = text.length;
  let at = from;
  while (at < len) {
    let eol = text.indexOf('\r\n', at);
    if (eol < 0) eol = len;
    let i = at;
    while (i < eol) {
      const c = text.charCodeAt(i);
      if (c > 127 || TOKEN[c] === 0) break;
      i++;
    }
    if (i === at || text.charCodeAt(i) !== 58) return false;
    const name = text.slice(at, i);
    i++;
    while (i < eol) {
      const c = text.charCodeAt(i);
      if (c !== 32 && c !== 9) break;
      i++;
    }
    let end = eol;
    while (end > i) {
      const c = text.charCodeAt(end - 1);
      if (c !== 32 && c !== 9) break;
      end--;
    }
    for (let j = i; j < end; j++) {
      const c = text.charCodeAt(j);
      if ((c < 32 && c !== 9) || c === 127) return false;
    }
    out.push(name, text.slice(i, end));
    at = eol + 2;
  }
  return true;
}
