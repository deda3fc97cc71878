/**
 * The proxy settings a platform passes on to its builds, read from this binary's environment
 * (only example binaries read `process.env`): HTTP_PROXY, HTTPS_PROXY and NO_PROXY in both cases.
 */
const PROXY_VARS = ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy'] as const;

/** The proxy variables set (non-empty) in `env`, for `buildEnv`. */
export function proxyEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return Object.fromEntries(PROXY_VARS.flatMap((name) => (env[name] ? [[name, env[name]]] : [])));
}
