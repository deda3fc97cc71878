import type { Route, RouteView } from './route-types.js';

/** A route as the API answers it and events carry it: a certificate's private key never leaves the controller. */
export function routeView(route: Route): RouteView {
  if (route.type !== 'http') return route;
  const { tls, acme, ...rest } = route;
  const view: RouteView = tls ? { ...rest, tls: { cert: tls.cert, keySet: true } } : rest;
  if (acme) {
    const { challenge: _challenge, ...shown } = acme;
    view.acme = shown;
  }
  return view;
}
