import type { IOptions } from 'etcd3';
import { DiscoveryErrorCodes, DiscoveryInputError } from './errors.js';

/**
 * How to authenticate to etcd: TLS (the CA that signed etcd's certificate, and a client certificate
 * when etcd runs with `--client-cert-auth`) and/or etcd's own users (`etcdctl auth enable`). Plain
 * data (PEM strings), so it travels in manifests and to child processes. Used by etcd discovery and
 * the etcd controller store alike.
 */
export interface EtcdCredentials {
  /** PEM CA certificate(s) that signed etcd's server certificate; needed with `https://` endpoints. */
  ca?: string;
  /** PEM client certificate, with {@link key}. */
  cert?: string;
  /** PEM client private key, with {@link cert}. */
  key?: string;
  /** etcd user, with {@link password}. */
  username?: string;
  password?: string;
}

/** The etcd3 client options for `credentials` (none when undefined). Throws a one-line error for a half-given pair. */
export function etcdClientOptions(credentials: EtcdCredentials | undefined): Pick<IOptions, 'credentials' | 'auth'> {
  if (credentials === undefined) return {};
  const { ca, cert, key, username, password } = credentials;
  const half = (a: unknown, b: unknown, what: string) => {
    if ((a === undefined) !== (b === undefined)) throw new DiscoveryInputError(DiscoveryErrorCodes.INVALID_CONFIG, `etcd credentials: ${what} go together`, { field: 'credentials' });
  };
  half(cert, key, 'a client cert and key');
  half(username, password, 'a username and password');
  if (cert !== undefined && ca === undefined) throw new DiscoveryInputError(DiscoveryErrorCodes.INVALID_CONFIG, 'etcd credentials: a client certificate needs the CA of etcd (ca)', { field: 'credentials.ca' });
  return {
    ...(ca !== undefined ? { credentials: { rootCertificate: Buffer.from(ca), ...(cert !== undefined && key !== undefined ? { certChain: Buffer.from(cert), privateKey: Buffer.from(key) } : {}) } } : {}),
    ...(username !== undefined && password !== undefined ? { auth: { username, password } } : {}),
  };
}

/** An etcd client error as one line starting `etcd`, saying what to fix when it is about credentials. */
export function etcdErrorLine(err: unknown): string {
  const message = (err as Error).message ?? String(err);
  const first = message.split('\n')[0]?.trim() ?? message;
  if (/unable to verify|unable to get local issuer|self[- ]signed|unknown ca/i.test(message)) return "etcd: cannot verify etcd's TLS certificate: give the CA that signed it (ca)";
  if (/bad certificate|certificate required|alert number 4[0-9]/i.test(message)) return 'etcd refused the TLS connection (no client certificate it trusts): give a client certificate and key (cert, key)';
  if (/authentication failed|user name is empty|invalid auth token|permission denied|user name not found/i.test(message)) return `etcd refused the user (${first.replace(/^\d+ [A-Z_]+: /, '')}): check the username and password`;
  return `etcd: ${first}`;
}
