import type { BackendRegistry } from './backends.js';
import { httpProbe, type OutlierDetector } from './outlier.js';
import type { HttpRoute } from './types.js';

export const HEALTH_CHECK_DEFAULTS = Object.freeze({ intervalMs: 10_000, timeoutMs: 2_000 });

/** The active health checks of the routes that have one ({@link HttpRoute}.healthCheck). */
export class ActiveHealthChecks {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly backends: BackendRegistry,
    private readonly health: OutlierDetector,
  ) {}

  /** Start (or restart, or stop) the checks of a route as it is now. */
  set(route: HttpRoute): void {
    this.remove(route.id);
    const hc = route.healthCheck;
    if (!hc) return;
    const check = { path: hc.path, host: route.domain.replace(/^\*\./, ''), timeoutMs: hc.timeoutMs ?? HEALTH_CHECK_DEFAULTS.timeoutMs };
    const run = () => void this.run(route.service, check);
    const timer = setInterval(run, hc.intervalMs ?? HEALTH_CHECK_DEFAULTS.intervalMs);
    timer.unref();
    this.timers.set(route.id, timer);
    run();
  }

  remove(id: string): void {
    clearInterval(this.timers.get(id));
    this.timers.delete(id);
  }

  close(): void {
    for (const id of [...this.timers.keys()]) this.remove(id);
  }

  private async run(service: string, check: { path: string; host: string; timeoutMs: number }): Promise<void> {
    const pool = this.backends.get(service);
    if (!pool) return;
    await Promise.all(
      pool.backends.map(async (backend) => {
        backend.check = check;
        // An ejected backend is probed with this same check by the outlier detector.
        if (backend.ejected) return;
        if (!(await httpProbe(backend.host, backend.port, check.host, check.path, check.timeoutMs))) this.health.eject(backend, 'health check failed');
      }),
    );
  }
}
