import { Agent } from 'node:https';
import { axios } from 'acme-client';

/** directory origin → an agent that trusts that directory's CA bundle. */
const agents = new Map<string, Agent>();
let installed = false;

/**
 * Trust `ca` (PEM, instead of node's default roots) for the HTTPS requests to the ACME directory
 * at `directoryUrl` and its origin. acme-client sends every request through one shared axios
 * instance, so the agent is chosen per request by origin: two clients of two directories in one
 * process each keep their own trust. Returns the undo.
 */
export function trustDirectoryCa(directoryUrl: string, ca: string): () => void {
  if (!installed) {
    axios.interceptors.request.use((config) => {
      const agent = config.url ? agents.get(new URL(config.url).origin) : undefined;
      if (agent) config.httpsAgent = agent;
      return config;
    });
    installed = true;
  }
  const origin = new URL(directoryUrl).origin;
  const agent = new Agent({ ca, keepAlive: true });
  agents.set(origin, agent);
  return () => {
    if (agents.get(origin) === agent) agents.delete(origin);
    agent.destroy();
  };
}
