import type { Discovery, Registration } from './discovery.js';
import type { RegisterOptions } from './types.js';

/** A won election. `lost` resolves when this instance stops leading (it was unregistered or expired). */
export interface Leadership extends AsyncDisposable {
  readonly registration: Registration;
  readonly lost: Promise<void>;
  /** Step down: unregister, so the next oldest instance leads. */
  resign(): Promise<void>;
}

export interface CampaignOptions extends RegisterOptions {
  signal?: AbortSignal;
}

/**
 * Stand for leadership of `service`: register as an instance and resolve once it is the oldest
 * live one (the leader). Rejects, unregistering, if `signal` aborts first. Works on any backend.
 */
export async function campaign(discovery: Discovery, options: CampaignOptions): Promise<Leadership> {
  const { signal, ...registerOptions } = options;
  signal?.throwIfAborted();
  const registration = await discovery.register(registerOptions);
  const watch = discovery.watch(registration.instance.service, signal ? { signal } : {});
  const id = registration.instance.id;
  try {
    for await (const event of watch) {
      const leader = event.type === 'current' || event.type === 'leader' ? event.leader : undefined;
      if (leader?.id === id) return leadership(discovery, registration);
    }
    throw signal?.reason ?? new Error('watch ended before leadership was won');
  } catch (err) {
    await registration.unregister();
    throw err;
  } finally {
    watch.close();
  }
}

function leadership(discovery: Discovery, registration: Registration): Leadership {
  const watch = discovery.watch(registration.instance.service);
  const lost = (async () => {
    const winner = Promise.race([registration.lost.then(() => undefined), (async () => {
      for await (const event of watch) {
        const leader = event.type === 'current' || event.type === 'leader' ? event.leader : undefined;
        if (leader !== undefined && leader?.id !== registration.instance.id) return;
        if (event.type === 'down' && event.instance.id === registration.instance.id) return;
      }
    })()]);
    await winner;
    watch.close();
  })();
  const resign = async () => {
    await registration.unregister();
    await lost;
  };
  return { registration, lost, resign, [Symbol.asyncDispose]: resign };
}
