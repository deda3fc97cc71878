import { readFile } from 'node:fs/promises';

/** `st` of a listening TCP socket in /proc/net/tcp{,6}. */
const LISTEN = '0A';
/** 127.0.0.0/8 as /proc prints it (little-endian hex: the last byte is the first octet). */
const isLoopbackV4 = (hex: string) => hex.length === 8 && hex.endsWith('7F');
/** ::1, and ::ffff:127.x.x.x, as /proc prints them (four little-endian 32-bit words). */
const isLoopbackV6 = (hex: string) => hex === '00000000000000000000000001000000' || (hex.startsWith('0000000000000000FFFF0000') && hex.endsWith('7F'));

/**
 * Whether the process `pid`'s network namespace has a TCP socket listening on `port` on an address
 * other than loopback (one a published port can reach). Undefined when its socket tables cannot be
 * read (no such process, or not this machine's).
 */
export async function listensOutsideLoopback(pid: number, port: number): Promise<boolean | undefined> {
  const tables = await Promise.all(['tcp', 'tcp6'].map((t) => readFile(`/proc/${pid}/net/${t}`, 'utf8').catch(() => undefined)));
  if (tables.every((t) => t === undefined)) return undefined;
  const want = port.toString(16).toUpperCase().padStart(4, '0');
  for (const table of tables) {
    for (const line of (table ?? '').split('\n').slice(1)) {
      const [, local, , st] = line.trim().split(/\s+/);
      if (st !== LISTEN || !local) continue;
      const [addr = '', localPort] = local.split(':');
      if (localPort === want && !isLoopbackV4(addr) && !isLoopbackV6(addr)) return true;
    }
  }
  return false;
}
