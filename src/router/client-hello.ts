/**
 * The server name (SNI) of a TLS ClientHello, read from the first bytes a client sends, before
 * any TLS library sees them (RFC 8446 §4.1.2, RFC 6066 §3). The HTTPS listener uses it to pick
 * which TLS server takes the connection (https-listener.ts says why).
 */

/** What {@link readServerName} found: more bytes needed, or the name (`undefined`: none, or not a ClientHello). */
export type HelloScan = { done: false } | { done: true; servername: string | undefined };

const MORE: HelloScan = { done: false };
const NONE: HelloScan = { done: true, servername: undefined };
/** A ClientHello is a few hundred bytes (a few KiB with post-quantum key shares); past this the name is not looked for. */
export const MAX_HELLO_BYTES = 64 * 1024;

/** Scan `buf` (the connection's first bytes): the SNI host name, `undefined` when there is none, or "need more". */
export function readServerName(buf: Buffer): HelloScan {
  const hello = handshakeMessage(buf);
  if (hello === undefined) return NONE;
  if (hello === null) return buf.length >= MAX_HELLO_BYTES ? NONE : MORE;
  return { done: true, servername: serverName(hello) };
}

/**
 * The first handshake message's body, joined from the TLS records that carry it; `null` if it has
 * not all arrived, `undefined` if this is not a TLS ClientHello.
 */
function handshakeMessage(buf: Buffer): Buffer | null | undefined {
  const parts: Buffer[] = [];
  let have = 0;
  let need = -1;
  for (let at = 0; ; ) {
    if (buf.length < at + 5) return null;
    if (buf[at] !== 22 /* handshake */ || buf[at + 1] !== 3) return undefined;
    const len = buf.readUInt16BE(at + 3);
    const end = at + 5 + len;
    const fragment = buf.subarray(at + 5, Math.min(end, buf.length));
    parts.push(fragment);
    have += fragment.length;
    if (need < 0 && have >= 4) {
      const head = parts.length === 1 ? fragment : Buffer.concat(parts);
      if (head[0] !== 1 /* client_hello */) return undefined;
      need = 4 + head.readUIntBE(1, 3);
    }
    if (need >= 0 && have >= need) return Buffer.concat(parts).subarray(4, need);
    if (end > buf.length) return null;
    at = end;
  }
}

/** The host_name entry of the server_name extension, if any. */
function serverName(hello: Buffer): string | undefined {
  let at = 2 + 32; // legacy_version, random
  const skip = (lenBytes: number): boolean => {
    if (at + lenBytes > hello.length) return false;
    at += lenBytes + hello.readUIntBE(at, lenBytes);
    return at <= hello.length;
  };
  if (!skip(1) || !skip(2) || !skip(1)) return undefined; // session id, cipher suites, compression methods
  if (at + 2 > hello.length) return undefined;
  const end = Math.min(hello.length, at + 2 + hello.readUInt16BE(at));
  at += 2;
  while (at + 4 <= end) {
    const type = hello.readUInt16BE(at);
    const len = hello.readUInt16BE(at + 2);
    at += 4;
    if (type === 0 /* server_name */) {
      // server_name_list: u16 length, then (u8 type, u16 length, name)...
      let p = at + 2;
      while (p + 3 <= at + len) {
        const nameType = hello[p];
        const nameLen = hello.readUInt16BE(p + 1);
        if (nameType === 0 && p + 3 + nameLen <= at + len) return hello.toString('latin1', p + 3, p + 3 + nameLen);
        p += 3 + nameLen;
      }
      return undefined;
    }
    at += len;
  }
  return undefined;
}
