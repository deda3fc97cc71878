/** The reference proxies of the router bench, configured by hand: nginx (one worker) and HAProxy (one thread). */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The Host the bench's requests carry (the one route both references and the routers serve). */
export const HOST = 'bench.test';

/**
 * The header work every router does (docs/router.md#headers), written the nginx way: X-Forwarded-*,
 * X-Request-Id (a client's valid one kept, else a fresh random one), X-Request-Start (nginx's
 * `$msec`, seconds with ms: the router sends ms, which nginx can only make with a regex per request), Forwarded appended (RFC 7239, a host with a port quoted), and the route found by Host.
 */
export function nginxConfig(dir: string, port: number, backends: string[]): string {
  const user = process.getuid?.() === 0 ? 'user root root;\n' : '';
  return `${user}worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_timeout 65s;
  keepalive_requests 1000000;
  upstream backends {
${backends.map((b) => `    server ${b};`).join('\n')}
    keepalive 128;
    keepalive_requests 1000000;
  }
  map $http_x_request_id $request_id_out {
    "~^[A-Za-z0-9+/=_.-]{20,200}$" $http_x_request_id;
    default $request_id;
  }
  map $http_host $forwarded_host {
    "~:" "\\"$http_host\\"";
    default $http_host;
  }
  map $http_forwarded $forwarded_out {
    "" "for=$remote_addr;proto=$scheme;host=$forwarded_host";
    default "$http_forwarded, for=$remote_addr;proto=$scheme;host=$forwarded_host";
  }
  server {
    listen 127.0.0.1:${port} default_server;
    return 404;
  }
  server {
    listen 127.0.0.1:${port};
    server_name ${HOST};
    location / {
      proxy_pass http://backends;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Port $server_port;
      proxy_set_header X-Request-Id $request_id_out;
      proxy_set_header X-Request-Start t=$msec;
      proxy_set_header Forwarded $forwarded_out;
    }
  }
}
`;
}

/** The same header work, Host routing and retry of a reset GET as nginx's above, the way one would write it for HAProxy (one thread). */
export function handHaproxyConfig(port: number, backends: string[]): string {
  return `global
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 65s
  timeout server 60s
  timeout http-keep-alive 65s
frontend fe
  bind 127.0.0.1:${port}
  http-request return status 404 unless { req.hdr(host),field(1,:) -i ${HOST} }
  option forwardfor
  http-request set-header x-forwarded-proto http
  http-request set-header x-forwarded-port %[dst_port]
  http-request set-header x-request-id %[uuid] unless { req.hdr(x-request-id) -m reg ^[A-Za-z0-9+/=_.-]{20,200}$ }
  http-request set-header x-request-start t=%[date(0,ms)]
  http-request add-header forwarded for=%[src];proto=http;host=%[req.hdr(host)]
  default_backend be
backend be
  balance random(2)
  http-reuse always
  # A reset GET goes to the other server, as nginx's default proxy_next_upstream does (the L7 retry keeps a copy of each request).
  retries 2
  option redispatch 1
  retry-on conn-failure empty-response
  http-request disable-l7-retry unless METH_GET || METH_HEAD || METH_OPTIONS
${backends.map((b, i) => `  server s${i} ${b}`).join('\n')}
`;
}

async function started(child: ChildProcess, what: string, log: () => string): Promise<ChildProcess> {
  await new Promise((r) => setTimeout(r, 500));
  if (child.exitCode !== null) throw new Error(`${what} exited: ${log()}`);
  return child;
}

/** nginx with one worker and a keep-alive upstream, in the foreground. */
export function startNginx(dir: string, port: number, backends: string[]): Promise<ChildProcess> {
  writeFileSync(join(dir, 'nginx.conf'), nginxConfig(dir, port, backends));
  const child = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'inherit'] });
  return started(child, 'nginx', () => readFileSync(join(dir, 'error.log'), 'utf8'));
}

/** HAProxy with one thread, written by hand the way one would for this job (the haproxy engine's baseline). */
export function startHaproxy(dir: string, port: number, backends: string[]): Promise<ChildProcess> {
  writeFileSync(join(dir, 'haproxy.cfg'), handHaproxyConfig(port, backends));
  const child = spawn('haproxy', ['-db', '-f', join(dir, 'haproxy.cfg')], { stdio: ['ignore', 'ignore', 'inherit'] });
  return started(child, 'haproxy', () => '');
}
