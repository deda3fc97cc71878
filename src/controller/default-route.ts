/**
 * The default route of an app is `<app>.<domain>` to the service its `web` jobs register as. A
 * deployment that starts an app's first web process says so (`Deployment.firstWeb`); the one who
 * deploys (the git receiver) then adds the route.
 */

/** The discovery service an app's `web` jobs register as (routes point at it). */
export function webService(appName: string): string {
  return `${appName}-web`;
}
