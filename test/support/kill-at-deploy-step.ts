/**
 * Preloaded into `npm start` (`node --import`) by tests: SIGKILLs the process right after the
 * deployment step named by `FLYNN_TEST_KILL_AT` is committed, as `<state>` or `<state>#<n>` (the
 * n-th such step), read from the deployer's `state <state>` phases on its diagnostics channel.
 * Only steps of deployments this process started count (from the first `state pending`), not the
 * steps with which it recovers the deployments a killed one left.
 */
import { channel } from 'node:diagnostics_channel';

const spec = process.env.FLYNN_TEST_KILL_AT ?? '';
const [state, nth] = spec.split('#');
let seen = 0;
let armed = false;
if (state) {
  channel('flynn-ts:deployer').subscribe((message) => {
    const phase = (message as { phase?: string }).phase;
    if (phase === 'state pending') armed = true;
    if (!armed || phase !== `state ${state}`) return;
    if (++seen === Number(nth ?? '1')) process.kill(process.pid, 'SIGKILL');
  });
}
