import type { ControllerClient } from '../controller/client.js';
import { splitGitSource } from '../taffy/git-url.js';
import type { CommandContext } from './context.js';

/**
 * Deploy `app` from `URL[#REF]` (Taffy), printing the build's lines as they come. A failure
 * throws the cluster's one-line reason.
 */
export async function deployFromGit(ctx: CommandContext, client: ControllerClient, app: string, arg: string): Promise<void> {
  await client.deployGit(app, splitGitSource(arg), { onOutput: (line) => ctx.out(line) });
}
