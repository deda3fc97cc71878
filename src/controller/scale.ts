/**
 * How an app's process counts carry across releases, as on Heroku: the app keeps one count per
 * process type ({@link App.scale}); a deployment runs the types its release has at those counts,
 * and a type the release lacks keeps its count, not running, for a later release that has it.
 * A release with a `web` type, deployed to an app whose web was never scaled, starts `web=1`.
 */
import type { App, Formation, Release } from './types.js';

/** The counts `app` is scaled to: its kept scale over its running formation (which alone stands in for apps stored before the scale was kept). */
export function appScale(app: Pick<App, 'scale'>, running: Pick<Formation, 'processes'> | undefined): Record<string, number> {
  return { ...running?.processes, ...app.scale };
}

/** What deploying a release with `types` to an app scaled to `scale` runs, and the app's scale after it. */
export interface ReleaseCounts {
  /** The app's scale after the deploy: `scale`, with `web: 1` when {@link firstWeb}. */
  scale: Record<string, number>;
  /** The counts the release runs at: the scale of each type it has, zeros left out. */
  processes: Record<string, number>;
  /** The release has a `web` type and the app's web was never scaled: it starts at 1 (and gets its default route). */
  firstWeb: boolean;
}

export function countsForRelease(scale: Record<string, number>, types: Release['processes']): ReleaseCounts {
  const firstWeb = Object.hasOwn(types, 'web') && !Object.hasOwn(scale, 'web');
  const next = firstWeb ? { ...scale, web: 1 } : { ...scale };
  const processes = Object.fromEntries(Object.entries(next).filter(([type, n]) => n > 0 && Object.hasOwn(types, type)));
  return { scale: next, processes, firstWeb };
}

/** Whether two scales hold the same counts. */
export function sameScale(a: Record<string, number>, b: Record<string, number> | undefined): boolean {
  const keys = Object.keys(a);
  return b !== undefined && keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}
