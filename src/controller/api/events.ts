import { ControllerInputError } from '../errors.js';
import { routeView } from '../route-view.js';
import * as S from '../schemas.js';
import type { Route } from '../route-types.js';
import type { ApiDeps, ApiServer, Req } from './deps.js';

/** `/events`: every change as Server-Sent Events, resumable with `Last-Event-Id`. */
export function registerEventRoutes(r: ApiServer, { store, app, sse }: ApiDeps): void {
  r.get('/events', { schema: { querystring: S.eventsQuery } }, async (req: Req<unknown, unknown, { app?: string; last_event_id?: string }>, reply) => {
    const header = req.headers['last-event-id'];
    const last = req.query.last_event_id ?? (typeof header === 'string' ? header : undefined);
    if (last !== undefined && !/^[0-9]+$/.test(last)) throw new ControllerInputError('last-event-id', 'Last-Event-Id must be a decimal event id');
    const appId = req.query.app === undefined ? undefined : (await app(req.query.app)).id;
    const abort = new AbortController();
    const events = store.watchEvents({ signal: abort.signal, ...(last !== undefined ? { afterId: last } : {}) });
    const writer = sse(req, reply);
    void writer.closed.then(() => abort.abort());
    try {
      for await (const e of events) {
        if (writer.isClosed) break;
        if (appId === undefined || e.appId === appId) writer.sendJson(`${e.object}.${e.op}`, e.object === 'route' ? { ...e, data: routeView(e.data as Route) } : e, e.id);
      }
    } catch (err) {
      writer.sendError(err);
    }
    writer.end();
    return reply;
  });
}
