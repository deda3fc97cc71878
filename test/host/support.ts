import Dockerode from 'dockerode';

/** Labels on every container the host suites create: the project's test mark and this run's. */
export const TEST_LABELS = (run: string): Record<string, string> => ({ 'io.flynn-ts.test': '1', 'io.flynn-ts.test-run': run });

/** Remove the containers of one test run (found by its label). */
export async function removeTestContainers(run: string): Promise<number> {
  const docker = new Dockerode();
  const found = await docker.listContainers({ all: true, filters: { label: ['io.flynn-ts.test=1', `io.flynn-ts.test-run=${run}`] } }).catch(() => []);
  await Promise.all(found.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => {})));
  return found.length;
}

/** The host key of the agents the host suites start (their clients send it). */
export const HOST_KEY = 'test-host-key';
