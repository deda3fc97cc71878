import { reportEnvChange } from './commands-app.js';
import type { Command } from './context.js';
import { CliError } from './errors.js';

/** The config var the slug builder reads: the one buildpack to use, no detection (docs/buildpacks.md). */
const BUILDPACK_URL = 'BUILDPACK_URL';

export const buildpackCommands: Command[] = [
  {
    name: 'buildpacks',
    usage: 'buildpacks [-a APP] | buildpacks set NAME|URL[#REF] | buildpacks clear',
    summary: "show or set the buildpack an app's pushes build with (BUILDPACK_URL; default: detected)",
    help: [
      'With no argument: the buildpack BUILDPACK_URL names, or that the cluster detects one at each push',
      '(nodejs, python, go, static, procfile, in that order; a .buildpacks file in the app lists several).',
      'set: a bundled buildpack by name (e.g. static) or a git URL with an optional #ref; clear: detect again.',
      'Both change the BUILDPACK_URL config var (a new release, deployed, as env set does): the next push uses it.',
    ].join('\n'),
    options: { json: { type: 'boolean' } },
    args: [0, 2],
    async run(ctx) {
      const client = await ctx.client();
      const app = await ctx.app();
      const [sub, ref, ...extra] = ctx.positionals;
      if (sub === undefined) {
        const url = (await client.getEnv(app))[BUILDPACK_URL];
        if (ctx.json) return ctx.printJson({ buildpackUrl: url ?? null });
        ctx.out(url ? `${app} builds with ${url} (BUILDPACK_URL)` : `${app} has no buildpack set: each push is detected (a .buildpacks file in the app lists several)`);
        return;
      }
      if (sub === 'set') {
        if (ref === undefined || ref.trim() === '' || extra.length > 0) throw new CliError('usage: flynn buildpacks set NAME|URL[#REF] (several: a .buildpacks file in the app)', { usage: true });
        return reportEnvChange(ctx, client, app, await client.setEnv(app, { [BUILDPACK_URL]: ref }), 'set');
      }
      if (sub === 'clear') {
        if (ref !== undefined) throw new CliError('usage: flynn buildpacks clear', { usage: true });
        return reportEnvChange(ctx, client, app, await client.unsetEnv(app, [BUILDPACK_URL]), 'unset');
      }
      throw new CliError(`unknown buildpacks subcommand ${JSON.stringify(sub)} (set, clear)`, { usage: true });
    },
  },
];
