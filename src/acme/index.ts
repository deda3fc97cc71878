/** `flynn-ts/acme`: automatic certificates for routes from an ACME CA (HTTP-01). See docs/router.md#acme. */
export { startAcme, ACME_DEFAULTS, LETS_ENCRYPT_DIRECTORY, type AcmeManager, type AcmeOptions, type AcmeStore } from './manager.js';
export { AcmeErrorCodes, AcmeInputError } from './errors.js';
