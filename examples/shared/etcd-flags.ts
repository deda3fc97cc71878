/**
 * The etcd credential flags of the binaries that reach etcd (`npm start`, examples/host): files
 * for TLS, a user name, and the password from the environment only (a flag would show in `ps`).
 */
import { readFileSync } from 'node:fs';
import type { EtcdCredentials } from '../../src/discovery/etcd-credentials.js';

export const ETCD_CREDENTIAL_FLAGS = {
  'etcd-ca': { type: 'string', value: 'FILE', env: 'ETCD_CA', help: "PEM CA of etcd's certificate (https:// endpoints)" },
  'etcd-cert': { type: 'string', value: 'FILE', env: 'ETCD_CERT', help: 'PEM client certificate for etcd --client-cert-auth, with --etcd-key' },
  'etcd-key': { type: 'string', value: 'FILE', env: 'ETCD_KEY', help: 'PEM client key, with --etcd-cert' },
  'etcd-user': { type: 'string', value: 'USER', env: 'ETCD_USER', help: 'etcd user (its password from ETCD_PASSWORD)' },
} as const;

export const ETCD_CREDENTIAL_NOTES = '  ETCD_PASSWORD    the password of --etcd-user';

/** The credentials the flags give (undefined when none); `fail` for an unreadable file. */
export function etcdCredentialsOf(values: Partial<Record<keyof typeof ETCD_CREDENTIAL_FLAGS, string>>, password: string | undefined, fail: (message: string) => never): EtcdCredentials | undefined {
  const out: EtcdCredentials = {};
  for (const [flag, field] of [['etcd-ca', 'ca'], ['etcd-cert', 'cert'], ['etcd-key', 'key']] as const) {
    const file = values[flag];
    if (!file) continue;
    try {
      out[field] = readFileSync(file, 'utf8');
    } catch (err) {
      fail(`--${flag}: ${(err as Error).message}`);
    }
  }
  if (values['etcd-user']) {
    if (!password) fail('--etcd-user needs its password in ETCD_PASSWORD');
    out.username = values['etcd-user'];
    out.password = password;
  }
  return Object.keys(out).length === 0 ? undefined : out;
}
