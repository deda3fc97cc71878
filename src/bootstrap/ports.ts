/** The platform's ports: checked free before anything starts, and a busy one named in one error. */
import { createServer } from 'node:net';
import { BootstrapInputError, BootstrapPortInUseError, COMPONENT_NAMES, isAddressInUse, type ListeningComponent } from './errors.js';
import type { PlatformPlan } from './platform-plan.js';

/** Whether `host:port` can be listened on right now (bound and released at once); other listen errors are thrown. */
function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (err) => (isAddressInUse(err) ? resolve(false) : reject(err)));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(true)));
  });
}

/** A listen that fails for another reason than a busy port: no such local address (`host`), or a privileged port. */
function cannotListen(component: ListeningComponent, host: string, port: number, err: unknown): BootstrapInputError {
  const code = (err as NodeJS.ErrnoException).code;
  const why = code === 'EADDRNOTAVAIL' ? 'no such local address' : code === 'EACCES' ? 'permission denied (ports below 1024 need privileges)' : (err as Error).message;
  const error = new BootstrapInputError(`the ${COMPONENT_NAMES[component]} cannot listen on ${host}:${port}: ${why}`, code === 'EADDRNOTAVAIL' ? 'host' : `ports.${component}`);
  Object.defineProperty(error, 'cause', { value: err, enumerable: false });
  return error;
}

/**
 * Throw {@link BootstrapPortInUseError} for the first fixed port of the plan that is in use, before
 * anything starts (a runtime image build or a wait for hosts would otherwise come first). Each
 * listen is still checked as the component starts: a port taken in between fails the same way.
 */
export async function checkPorts(host: string, ports: PlatformPlan['ports']): Promise<void> {
  for (const component of ['shelf', 'router', 'routerHttps', 'git', 'controller'] as const) {
    const p = ports[component];
    if (p === 0) continue;
    const free = await portFree(host, p).catch((err: unknown) => {
      throw cannotListen(component, host, p, err);
    });
    if (!free) throw new BootstrapPortInUseError(component, host, p);
  }
}

/** Run the start of a component that listens on `host:port`, turning "address in use" into {@link BootstrapPortInUseError}. */
export async function listening<T>(component: ListeningComponent, host: string, port: number, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    if (isAddressInUse(err)) throw new BootstrapPortInUseError(component, host, port, err);
    throw err;
  }
}
