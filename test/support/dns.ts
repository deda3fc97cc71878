/**
 * A tiny authoritative DNS server over UDP for tests: A records for the names it is given (case
 * insensitive), an empty answer for other types of those names (AAAA, CAA...), NXDOMAIN for
 * anything else. Enough for an ACME test CA (`pebble -dnsserver`) to resolve test domains.
 */
import { createSocket } from 'node:dgram';

export interface TestDns {
  /** `127.0.0.1:<port>`. */
  addr: string;
  /** name → IPv4 address; change it at will. */
  names: Map<string, string>;
  close(): Promise<void>;
}

const A = 1;

/** The question's name (lower case), type, and where the question section ends. */
function question(msg: Buffer): { name: string; type: number; end: number } | undefined {
  const labels: string[] = [];
  let i = 12;
  while (i < msg.length && msg[i] !== 0) {
    const len = msg[i] as number;
    if (len > 63) return undefined; // no compression in questions
    labels.push(msg.subarray(i + 1, i + 1 + len).toString('latin1'));
    i += 1 + len;
  }
  if (i + 5 > msg.length) return undefined;
  return { name: labels.join('.').toLowerCase(), type: msg.readUInt16BE(i + 1), end: i + 5 };
}

export async function startTestDns(names: Record<string, string> = {}): Promise<TestDns> {
  const table = new Map(Object.entries(names).map(([k, v]) => [k.toLowerCase(), v]));
  const socket = createSocket('udp4');
  socket.on('message', (msg, peer) => {
    if (msg.length < 12) return;
    const q = question(msg);
    if (!q) return;
    const ip = table.get(q.name.replace(/\.$/, ''));
    const answers = ip !== undefined && q.type === A ? [ip] : [];
    const head = Buffer.alloc(12);
    msg.copy(head, 0, 0, 2); // id
    const rd = (msg[2] as number) & 1;
    head[2] = 0x84 | rd; // response, authoritative
    head[3] = ip === undefined ? 3 : 0; // NXDOMAIN or NOERROR
    head.writeUInt16BE(1, 4);
    head.writeUInt16BE(answers.length, 6);
    const records = answers.map((addr) => {
      const rr = Buffer.alloc(16);
      rr.writeUInt16BE(0xc00c, 0); // the question's name
      rr.writeUInt16BE(A, 2);
      rr.writeUInt16BE(1, 4); // IN
      rr.writeUInt32BE(5, 6); // TTL
      rr.writeUInt16BE(4, 10);
      addr.split('.').forEach((octet, k) => (rr[12 + k] = Number(octet)));
      return rr;
    });
    socket.send(Buffer.concat([head, msg.subarray(12, q.end), ...records]), peer.port, peer.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return {
    addr: `127.0.0.1:${socket.address().port}`,
    names: table,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
