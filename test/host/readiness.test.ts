import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { portServes } from '../../src/host/readiness.js';

describe('port readiness', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });

  async function listen(onConnection: (socket: import('node:net').Socket) => void): Promise<number> {
    const server = createServer(onConnection);
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return (server.address() as AddressInfo).port;
  }

  it('counts a port that accepts and keeps the connection open as serving', async () => {
    const port = await listen(() => {});
    expect(await portServes('127.0.0.1', port)).toBe(true);
  });

  it('does not count a port that accepts and closes at once, as Docker’s proxy does before the app listens', async () => {
    const port = await listen((socket) => socket.destroy());
    expect(await portServes('127.0.0.1', port)).toBe(false);
  });

  it('does not count a port nobody listens on', async () => {
    const port = await listen(() => {});
    await new Promise((r) => servers.pop()?.close(r));
    expect(await portServes('127.0.0.1', port)).toBe(false);
  });
});
