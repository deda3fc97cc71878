import type { Deployment } from './types.js';

/**
 * The last deployment of each release (by creation time), keyed by release id: its status is the
 * release's (`flynn releases`); a release whose last deployment failed never served.
 */
export function lastDeploymentOf(deployments: readonly Deployment[]): Map<string, Deployment> {
  const last = new Map<string, Deployment>();
  for (const d of deployments) {
    const seen = last.get(d.newReleaseId);
    if (seen === undefined || d.createdAt >= seen.createdAt) last.set(d.newReleaseId, d);
  }
  return last;
}
