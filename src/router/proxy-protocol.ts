import type { Socket } from 'node:net';

/** The client a PROXY protocol header names. */
export interface ProxiedClient {
  address: string;
  port: number;
}

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
/** Longest v1 line (107 bytes) and v2 header we wait for before giving up. */
const MAX_HEADER = 536;

/** Parse a PROXY v1 or v2 header at the start of `buf`: its length and client, `undefined` if more bytes are needed, or an Error. */
export function parseProxyHeader(buf: Buffer): { length: number; client: ProxiedClient | undefined } | undefined | Error {
  if (buf.length >= 12 && buf.subarray(0, 12).equals(V2_SIGNATURE)) {
    if (buf.length < 16) return undefined;
    const length = 16 + buf.readUInt16BE(14);
    if (buf.length < length) return undefined;
    const command = (buf[12] as number) & 0x0f;
    const family = (buf[13] as number) >> 4;
    // LOCAL (health checks from the balancer itself), or a family other than IPv4/IPv6: no client.
    if (command === 0 || (family !== 1 && family !== 2)) return { length, client: undefined };
    if (family === 1) return { length, client: { address: [...buf.subarray(16, 20)].join('.'), port: buf.readUInt16BE(24) } };
    const groups = Array.from({ length: 8 }, (_, i) => buf.readUInt16BE(16 + i * 2).toString(16));
    return { length, client: { address: groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::'), port: buf.readUInt16BE(48) } };
  }
  if (buf.length >= 6 && buf.subarray(0, 6).toString('latin1') === 'PROXY ') {
    const end = buf.indexOf('\r\n');
    if (end === -1) return buf.length > 107 ? new Error('PROXY v1 line too long') : undefined;
    const parts = buf.subarray(0, end).toString('latin1').split(' ');
    if (parts[1] === 'UNKNOWN') return { length: end + 2, client: undefined };
    if (parts.length !== 6 || (parts[1] !== 'TCP4' && parts[1] !== 'TCP6')) return new Error('malformed PROXY v1 line');
    return { length: end + 2, client: { address: parts[2] as string, port: Number(parts[4]) } };
  }
  const v2 = V2_SIGNATURE.subarray(0, Math.min(buf.length, 12)).equals(buf.subarray(0, 12));
  const v1 = 'PROXY '.startsWith(buf.subarray(0, 6).toString('latin1'));
  return v1 || v2 ? undefined : new Error('no PROXY protocol header');
}

/**
 * Read the PROXY header off a new connection, put back the bytes after it, and make the socket's
 * `remoteAddress`/`remotePort` the client's, and hand it on paused (the taker resumes it once it
 * reads). Connections without a valid header are destroyed.
 */
export function acceptProxied(socket: Socket, then: (socket: Socket) => void): void {
  let buf = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    const parsed = parseProxyHeader(buf);
    if (parsed === undefined && buf.length < MAX_HEADER) return;
    socket.off('data', onData);
    if (parsed === undefined || parsed instanceof Error) return void socket.destroy();
    socket.pause();
    if (parsed.client) {
      Object.defineProperty(socket, 'remoteAddress', { value: parsed.client.address, configurable: true });
      Object.defineProperty(socket, 'remotePort', { value: parsed.client.port, configurable: true });
    }
    if (buf.length > parsed.length) socket.unshift(buf.subarray(parsed.length));
    then(socket);
  };
  socket.on('data', onData);
  socket.once('error', () => socket.destroy());
}
