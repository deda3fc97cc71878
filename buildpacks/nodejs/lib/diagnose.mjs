// Names the real cause of a failed install in one line, from the package manager's output.
//
//   node diagnose.mjs PM LOCKFILE LOG   print the cause (nothing when no known cause is found)
//
// PM is npm, yarn or pnpm; LOCKFILE the app's lock file ('' for none); LOG the install's output.
import { readFileSync } from 'node:fs';
import { URL } from 'node:url';

const [pm, lockfile, logFile] = process.argv.slice(2);
const log = readFileSync(logFile, 'utf8');
const lock = lockfile || 'the lock file';
const relock = { npm: 'npm install', yarn: 'yarn install', pnpm: 'pnpm install' }[pm] ?? `${pm} install`;

/** The first match of `re` in the log (its first group), trimmed. */
const first = (re) => re.exec(log)?.[1]?.trim();

/** A package name out of a registry URL: https://registry.npmjs.org/@scope%2fname → @scope/name. */
const fromUrl = (url) => decodeURIComponent(new URL(url).pathname.slice(1)).replace(/\/-\/.*$/, '');

function cause() {
  // corepack could not get the package manager.
  const hashes = first(/Error: (Mismatch hashes\. .*)/);
  if (hashes) return `corepack downloaded ${pm}, but it is not what packageManager's hash pins (${hashes}): fix the hash in package.json`;
  const request = first(/Error when performing the request to (\S+?);/);
  if (request) {
    const reason = [...log.matchAll(/\[cause\]: (?:\w*Error: )?(.+)/g)].map((m) => m[1].trim()).pop();
    return `corepack could not download ${pm} from ${request}${reason ? ` (${reason})` : ''}`;
  }
  // The lock file does not match package.json.
  if (/can only install packages when your package\.json and package-lock\.json/.test(log)
    || /Your lockfile needs to be updated, but yarn was run with `--frozen-lockfile`/.test(log)
    || /YN0028\b/.test(log)
    || /ERR_PNPM_OUTDATED_LOCKFILE/.test(log)) {
    const detail = first(/npm (?:error|ERR!) ((?:Missing|Invalid): .*)/)
      ?? first(/ERR_PNPM_OUTDATED_LOCKFILE.*\n(?:.*\n)*?\s*(specifiers in the lockfile .*)/)
      ?? (/YN0028\b/.test(log) ? 'yarn install --immutable would change it' : undefined);
    return `${lock} is out of sync with package.json${detail ? ` (${detail})` : ''}: run ${relock} and commit ${lock}`;
  }
  // A dependency the registry does not have.
  const npm404 = first(/npm (?:error|ERR!) 404 +(?:The requested resource )?'(.+?)' (?:is not in this registry|could not be found)/);
  if (npm404) return `the dependency ${npm404} is not in the npm registry (E404): check its name in package.json`;
  const url404 = first(/(?:ERR_PNPM_FETCH_404|error An unexpected error occurred).*?(https?:\/\/[^\s":]+)(?::|\s).*(?:Not Found|Not found|404)/);
  if (url404) return `the dependency ${fromUrl(url404)} is not in the npm registry (404 from ${new URL(url404).host}): check its name in package.json`;
  const yarn404 = first(/error Couldn't find package "(.+?)" on the "npm" registry/);
  if (yarn404) return `the dependency ${yarn404} is not in the npm registry: check its name in package.json`;
  const berry404 = first(/YN0035:.*?(\S+@npm:\S+): (?:Package not found|The remote server failed)/);
  if (berry404) return `the dependency ${berry404.replace(/@npm:/, '@')} is not in the npm registry: check its name in package.json`;
  // A version range nothing in the registry satisfies.
  const noVersion = first(/No matching version found for (\S+?)\.?\s*$/m) ?? first(/ERR_PNPM_NO_MATCHING_VERSION\s+No matching version found for (\S+)/);
  if (noVersion) return `no version of ${noVersion} is in the npm registry: check its range in package.json`;
  // A tarball that is not what the lock file pinned.
  const corrupt = first(/npm warn tarball tarball data for (\S+?)@/);
  if (/code EINTEGRITY/.test(log)) return `a package${corrupt ? `, ${corrupt},` : ''} does not match the integrity hash in ${lock} (EINTEGRITY): regenerate ${lock} with ${relock}`;
  // A dependency's install script (node-gyp for a native module) failed.
  const scriptPath = first(/npm (?:error|ERR!) path (\S+)/);
  const scriptCommand = first(/npm (?:error|ERR!) command sh -c (.+)/);
  if (scriptPath && scriptCommand) {
    const name = scriptPath.split('/node_modules/').pop();
    const gyp = !/gyp (?:ERR!|info)/.test(log) ? ''
      : /getNodeDir|nodejs\.org\/download/.test(log) ? ': node-gyp found no node headers on the stack and could not download them'
        : ': a native module did not compile with node-gyp';
    return `the install script of ${name} failed (${scriptCommand})${gyp}`;
  }
  return undefined;
}

const found = cause();
if (found) console.log(found);
