/**
 * `startHostAgent`: a {@link HostAgent} and its HTTP API (server.ts), listening and registered in
 * discovery. The agent and its server do not import each other; this wires them.
 */
import { HostAgent } from './agent.js';
import type { HostAgentConfig } from './agent-config.js';
import { HostErrorCodes, HostInputError } from './errors.js';
import { createHostServer } from './server.js';

/** A running agent: its API URL and an idempotent close. */
export interface HostAgentHandle extends AsyncDisposable {
  readonly agent: HostAgent;
  /** `http://host:port` of the API. */
  readonly url: string;
  /** Stop the API, leave discovery; jobs keep running. Does not close the runtime or discovery. */
  close(): Promise<void>;
}

export interface StartHostAgentOptions extends HostAgentConfig {
  /** Where the API listens. Default: `advertiseAddr`, port 0 (any free port). */
  listen?: { host?: string; port?: number };
  /**
   * The host key: every API request must carry it (`HostClient({ url, key })`). In a cluster it is
   * `componentKey(clusterKey, 'host')` (see docs/security.md). Required unless `insecureNoAuth`.
   */
  key?: string;
  /**
   * Serve the API without authentication. Anyone who reaches it can run any command as the
   * agent's user (root, with Docker): only for a library user who asks for it on a private
   * loopback setup. Default false.
   */
  insecureNoAuth?: boolean;
}

/** The API's key, checked once: a non-empty key, or `null` when the caller opted out explicitly. */
function apiKey(options: StartHostAgentOptions): string | null {
  if (options.insecureNoAuth === true) {
    if (options.key !== undefined) throw new HostInputError('give either key or insecureNoAuth, not both', 'key', HostErrorCodes.INVALID_CONFIG);
    return null;
  }
  if (typeof options.key !== 'string' || options.key.length === 0) {
    throw new HostInputError('the host agent needs a non-empty key (its API runs jobs as root); pass insecureNoAuth: true to serve it unauthenticated', 'key', HostErrorCodes.INVALID_CONFIG);
  }
  return options.key;
}

/** Start an agent and its HTTP API. */
export async function startHostAgent(options: StartHostAgentOptions): Promise<HostAgentHandle> {
  const key = apiKey(options);
  const agent = new HostAgent(options);
  const server = createHostServer(agent, { key, ...(options.logger ? { logger: options.logger } : {}) });
  const listenHost = options.listen?.host ?? agent.advertiseAddr;
  const bound = await server.listen(listenHost, options.listen?.port ?? 0);
  // Listening on a wildcard address: others reach the API at the advertised address.
  const addr = listenHost === '0.0.0.0' || listenHost === '::' ? `${agent.advertiseAddr}:${bound.slice(bound.lastIndexOf(':') + 1)}` : bound;
  try {
    await agent.begin(addr);
  } catch (err) {
    await agent.close();
    await server.close();
    throw err;
  }
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      // Stop accepting, end the open streams, then let go of discovery.
      const stopped = server.close();
      await agent.close();
      await stopped;
    })());
  return { agent, url: `http://${addr}`, close, [Symbol.asyncDispose]: close };
}
