/**
 * An uploaded certificate and key, checked before the route takes them: what the router would
 * otherwise only log (a key that does not sign for the certificate, a certificate that does not
 * name the domain) is a 400 naming the field, and a private key pasted as the certificate is never
 * stored where API answers show it.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { ControllerInputError } from './errors.js';
import type { HttpRouteTls } from './route-types.js';

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export function validateRouteTls(tls: HttpRouteTls, domain: string): HttpRouteTls {
  if (/PRIVATE KEY-----/.test(tls.cert)) throw new ControllerInputError('tls.cert', 'tls.cert holds a private key: give the certificate (and its chain) as cert, the key as key');
  const pems = tls.cert.match(PEM_CERTIFICATE) ?? [];
  if (pems.length === 0) throw new ControllerInputError('tls.cert', 'tls.cert is not a PEM certificate (-----BEGIN CERTIFICATE-----)');
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(pems[0] as string);
    for (const pem of pems.slice(1)) new X509Certificate(pem);
  } catch (err) {
    throw new ControllerInputError('tls.cert', `tls.cert is not a readable PEM certificate: ${(err as Error).message}`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(tls.key);
  } catch {
    throw new ControllerInputError('tls.key', 'tls.key is not a readable PEM private key (an encrypted key needs its passphrase removed)');
  }
  if (!leaf.checkPrivateKey(key)) throw new ControllerInputError('tls.key', 'tls.key does not match tls.cert (the first certificate is the one the key signs for)');
  // A wildcard route is served to any one label below it: the certificate must cover such a name.
  const name = domain.startsWith('*.') ? `any-name${domain.slice(1)}` : domain;
  if (leaf.checkHost(name) === undefined) throw new ControllerInputError('tls.cert', `tls.cert does not name ${domain} (it names ${leaf.subjectAltName ?? leaf.subject.replace(/\n/g, ', ')})`);
  return tls;
}
