/**
 * The host's CA bundle in containers: mounted read-only over the image's own bundle path, with the
 * environment that makes node (which ignores the system store) and OpenSSL-based tools trust it.
 * A TLS-intercepting proxy's CA in the host bundle is then trusted by builds and jobs alike.
 */
import { existsSync } from 'node:fs';

/** Where the bundle sits in Debian-based images (the stack image and the runtime image both). */
export const CA_BUNDLE_PATH = '/etc/ssl/certs/ca-certificates.crt';

/** The environment that points TLS clients at the bundle `file`. */
export function caBundleEnv(file: string): Record<string, string> {
  return { NODE_EXTRA_CA_CERTS: file, SSL_CERT_FILE: file };
}

/** Bind mount and environment for a container given the host bundle `hostFile`; none when it is `null` or missing. */
export function caBundleMount(hostFile: string | null): { binds: string[]; env: Record<string, string> } {
  // A missing host path would make the engine create a directory there: skip it instead.
  if (hostFile === null || !existsSync(hostFile)) return { binds: [], env: {} };
  return { binds: [`${hostFile}:${CA_BUNDLE_PATH}:ro`], env: caBundleEnv(CA_BUNDLE_PATH) };
}
