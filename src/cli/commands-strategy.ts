import type { DeploymentStrategy } from '../controller/types.js';
import type { Command } from './context.js';

export const strategyCommands: Command[] = [
  {
    name: 'strategy',
    usage: 'strategy [-a APP] [all-at-once|one-by-one]',
    summary: "show or set how the app's deploys replace its jobs (all-at-once, the default, or one-by-one)",
    help: [
      'all-at-once: the new release is brought up at full scale next to the old one, which is stopped once',
      'every new job is up. one-by-one: one new job at a time per process type, the old release scaled',
      'down by one as each is up. Either way a deploy whose new jobs do not come up (or end within the',
      "deploy's hold) fails and the old release keeps serving. The next push, env change or rollback uses it.",
    ].join('\n'),
    options: { json: { type: 'boolean' } },
    args: [0, 1],
    async run(ctx) {
      const client = await ctx.client();
      const name = await ctx.app();
      const wanted = ctx.positionals[0];
      // The controller checks the name (a 400 listing the strategies).
      const app = wanted === undefined ? await client.getApp(name) : await client.updateApp(name, { strategy: wanted as DeploymentStrategy });
      if (ctx.json) return ctx.printJson({ strategy: app.strategy });
      ctx.out(wanted === undefined ? `${app.name} deploys ${app.strategy}` : `${app.name} now deploys ${app.strategy}`);
    },
  },
];
