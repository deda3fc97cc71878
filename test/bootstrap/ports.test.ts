import { createServer, type AddressInfo, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { BootstrapErrorCodes, BootstrapInputError, BootstrapPortInUseError, startCluster, startPlatform, type BootstrapStep } from '../../src/bootstrap/index.js';
import { MemoryDiscovery } from '../../src/discovery/index.js';

const HOST = '127.0.0.3';
type Component = 'controller' | 'router' | 'git' | 'shelf';
const COMPONENTS: readonly Component[] = ['controller', 'router', 'git', 'shelf'];

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

/** A plain TCP server holding `port` (0: any) on HOST until the test ends. */
function occupy(port = 0): Promise<number> {
  const server = createServer();
  servers.push(server);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, HOST, () => resolve((server.address() as AddressInfo).port));
  });
}

/** Whether a fresh server can listen on HOST:port now. */
function free(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, HOST, () => probe.close(() => resolve(true)));
  });
}

/** Four distinct ports that were free a moment ago. */
async function freePorts(): Promise<Record<Component, number>> {
  const held = await Promise.all(COMPONENTS.map(() => occupy()));
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return Object.fromEntries(COMPONENTS.map((c, i) => [c, held[i]])) as Record<Component, number>;
}

async function expectOthersFree(ports: Record<Component, number>, busy: Component): Promise<void> {
  for (const c of COMPONENTS) if (c !== busy) expect(await free(ports[c]), `${c} port ${ports[c]} is free again`).toBe(true);
}

describe('a busy port at startCluster', () => {
  for (const busy of COMPONENTS) {
    it(`fails with BootstrapPortInUseError naming the ${busy}, its address and ports.${busy}, and leaves nothing listening`, async () => {
      const ports = await freePorts();
      await occupy(ports[busy]);
      const err = await startCluster({ host: HOST, runtime: 'process', ports }).then(
        (c) => c.close().then(() => undefined),
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(BootstrapPortInUseError);
      const e = err as BootstrapPortInUseError;
      expect(e.code).toBe(BootstrapErrorCodes.PORT_IN_USE);
      expect(e.kind).toBe('conflict');
      expect({ component: e.component, host: e.host, port: e.port, option: e.option }).toEqual({ component: busy, host: HOST, port: ports[busy], option: `ports.${busy}` });
      expect(e.detail).toEqual({ component: busy, host: HOST, port: ports[busy], option: `ports.${busy}` });
      expect(e.message).toContain(`${HOST}:${ports[busy]}`);
      await expectOthersFree(ports, busy);
    });
  }
});

describe('a port taken while startPlatform is starting', () => {
  // The ports are free at the up-front check; each is taken just before its component listens
  // (the step before it), so the listen itself fails.
  const takenAfter: Record<Component, string> = { shelf: 'build', router: 'shelf', git: 'router', controller: 'git' };
  for (const busy of COMPONENTS) {
    it(`turns the ${busy}'s listen error into BootstrapPortInUseError and closes what had started`, async () => {
      const ports = await freePorts();
      const discovery = new MemoryDiscovery();
      let taking: Promise<number> | undefined;
      const onStep = (s: BootstrapStep) => {
        if (s.step === takenAfter[busy]) taking = occupy(ports[busy]);
      };
      try {
        const err = await startPlatform({ discovery, host: HOST, build: 'process', ports, onStep }).then(
          (p) => p.close().then(() => undefined),
          (e: unknown) => e,
        );
        expect(taking, 'the port was taken during the start').toBeDefined();
        expect(err).toBeInstanceOf(BootstrapPortInUseError);
        expect((err as BootstrapPortInUseError).component).toBe(busy);
        expect((err as BootstrapPortInUseError).port).toBe(ports[busy]);
        await expectOthersFree(ports, busy);
      } finally {
        await discovery.close();
      }
    });
  }
});

describe('port options', () => {
  it('refuse two components on the same fixed port before anything starts', async () => {
    const err = await startCluster({ host: HOST, runtime: 'process', ports: { controller: 0, router: 0, git: 47_001, shelf: 47_001 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BootstrapInputError);
    expect((err as BootstrapInputError).code).toBe(BootstrapErrorCodes.INVALID_OPTIONS);
    expect((err as BootstrapInputError).detail).toEqual({ field: 'ports.shelf' });
  });

  it('refuse a detached router without a data dir to find it again through', async () => {
    const err = await startCluster({ host: HOST, runtime: 'process', detachedRouter: true, ports: { controller: 0, router: 0, git: 0, shelf: 0 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BootstrapInputError);
    expect((err as BootstrapInputError).message).toMatch(/^detachedRouter needs a dataDir/);
    expect((err as BootstrapInputError).detail).toEqual({ field: 'detachedRouter' });
  });

  it('take 0 as any free port, skipping one another program holds', async () => {
    const taken = await occupy(0);
    const cluster = await startCluster({ host: HOST, runtime: 'process', ports: { controller: 0, router: 0, git: 0, shelf: 0 } });
    try {
      expect([cluster.routerPort, ...[cluster.controllerUrl, cluster.shelfUrl, `http://${cluster.gitHost}`].map((u) => Number(new URL(u).port))]).not.toContain(taken);
      expect(cluster.controllerUrl).toMatch(new RegExp(`^https://${HOST.replace(/\./g, '\\.')}:\\d+$`));
    } finally {
      await cluster.close();
    }
  });
});
