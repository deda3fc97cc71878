/** The host agent's discovery registrations: its own (`flynn-host`, registered again when lost) and its jobs' services once they serve. */
import type { Logger } from '../common/logger.js';
import type { Registration } from '../discovery/discovery.js';
import type { AgentSettings } from './agent-config.js';
import type { JobRecord } from './job-record.js';
import { probeUntil, servesBeforeRegistering, waitUntilServing } from './readiness.js';
import { traceHost } from './trace.js';

export class AgentRegistrations {
  private hostRegistration: Registration | undefined;

  constructor(
    private readonly config: AgentSettings,
    private readonly logger: Logger,
    /** Whether the agent is closed: nothing is registered any more. */
    private readonly closed: () => boolean,
  ) {}

  /**
   * Register the job's services once its ports really serve, so that the router never sends a
   * request to a job that is still booting (and a deploy never routes to a release that cannot
   * answer). Runs in the background: a job that never listens is simply never registered.
   */
  registerServices(rec: JobRecord): void {
    if (rec.job.oneOff || this.closed()) return;
    const wanted = () => rec.job.state === 'up' && !this.closed();
    // Without a port-mapping proxy in front of the job, an accepted connection is the job's own.
    const probe = this.config.runtime.mapsPorts ? {} : { settleMs: 0 };
    const { runtime } = this.config;
    void (async () => {
      for (const port of rec.job.boundPorts) {
        if (!servesBeforeRegistering(port)) continue;
        // A port proxy's accepted connection can pass for the job's on a busy machine: the runtime, when it can, says whether the job itself listens.
        if (runtime.listening && !(await probeUntil(async () => (await runtime.listening?.(this.config.id, rec.job.id, port.port)) !== false, wanted))) return;
        if (!(await waitUntilServing(this.config.advertiseAddr, port.hostPort, wanted, probe))) return;
      }
      traceHost('serving', rec.job.id);
      await this.registerServicesNow(rec);
      traceHost('registered', rec.job.id);
    })().catch((err: Error) => this.logger.error('cannot register job services', { jobId: rec.job.id, err: err.message }));
  }

  private async registerServicesNow(rec: JobRecord): Promise<void> {
    for (const port of rec.job.boundPorts) {
      if (!port.service) continue;
      try {
        const reg = await this.config.discovery.register({
          service: port.service,
          addr: `${this.config.advertiseAddr}:${port.hostPort}`,
          proto: port.proto === 'udp' ? 'udp' : 'http',
          meta: { jobId: rec.job.id, app: rec.job.app, type: rec.job.type, release: rec.job.release, hostId: this.config.id },
          ttlMs: this.config.registrationTtlMs,
        });
        if (rec.job.state !== 'up' || this.closed()) await reg.unregister();
        else rec.services.push(reg);
      } catch (err) {
        this.logger.error('cannot register a job service', { jobId: rec.job.id, service: port.service, err: (err as Error).message });
      }
    }
  }

  async unregisterServices(rec: JobRecord): Promise<void> {
    const regs = rec.services.splice(0);
    await Promise.all(regs.map((r) => r.unregister().catch(() => {})));
  }

  async registerHost(apiAddr: string): Promise<void> {
    const reg = await this.config.discovery.register({
      service: 'flynn-host',
      addr: apiAddr,
      meta: {
        id: this.config.id,
        addr: apiAddr,
        advertiseAddr: this.config.advertiseAddr,
        tags: JSON.stringify(this.config.tags),
        capacity: JSON.stringify(this.config.capacity),
      },
      ttlMs: this.config.registrationTtlMs,
    });
    this.hostRegistration = reg;
    void reg.lost.then(async (err) => {
      if (this.closed()) return;
      this.logger.warn('host registration lost; registering again', { err: err.message });
      for (let attempt = 0; !this.closed(); attempt++) {
        try {
          return await this.registerHost(apiAddr);
        } catch {
          await this.config.clock.sleep(Math.min(5000, 200 * 2 ** attempt)).catch(() => {});
        }
      }
    });
  }

  async unregisterHost(): Promise<void> {
    await this.hostRegistration?.unregister().catch(() => {});
  }
}
