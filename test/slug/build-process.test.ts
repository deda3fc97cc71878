import { describeBuilds } from './build-suite.js';
import { freePort, runSlugAsProcess } from './helpers.js';
import { ProcessBuildExecutor } from '../../src/slug/process-executor.js';

const HOST_IP = '127.0.0.6';

describeBuilds('process', {
  hostIp: HOST_IP,
  // busybox httpd binds every interface; on the host only loopback listeners are allowed.
  runsProcfileWeb: false,
  executor: async () => new ProcessBuildExecutor(),
  run: async ({ shelf, slugPath, type, env }) => runSlugAsProcess({ client: shelf.client, slugPath, type, hostIp: HOST_IP, port: await freePort(HOST_IP), ...(env ? { env } : {}) }),
});
