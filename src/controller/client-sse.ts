/** The controller's Server-Sent Event streams, opened through the client's HTTP client. */
import { parseSse, type SseEvent } from '../common/http/sse.js';
import type { HttpJsonClient } from '../common/http/json-client.js';

/** An SSE stream whose response has arrived; its body is released when the stream ends. */
export async function openSse(http: HttpJsonClient, method: Parameters<HttpJsonClient['stream']>[0], path: string, options: Parameters<HttpJsonClient['stream']>[2]): Promise<AsyncGenerator<SseEvent>> {
  const res = await http.stream(method, path, { ...options, headers: { accept: 'text/event-stream', ...options?.headers } });
  return (async function* () {
    try {
      yield* parseSse(res.body);
    } finally {
      res.body.destroy();
    }
  })();
}
