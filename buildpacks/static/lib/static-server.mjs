// The static file server of the flynn-ts static buildpack. bin/compile copies it into the slug as
// .flynn/static-server.mjs; the web process runs `node .flynn/static-server.mjs`. It depends on
// nothing but node, because that is all the runtime image has.
//
// Serves the app directory, or the "root" named in static.json, on $PORT (on $HOST, default
// 0.0.0.0). static.json may also set "clean_urls": true to serve /about from about.html.
// Directories answer with their index.html; dotfiles (.profile.d, .flynn, .git ...) are never
// served; a path that leaves the root is refused with 400.
//
//   node static-server.mjs                serve the app this file was copied into (its parent dir)
//   node static-server.mjs --check DIR    validate DIR/static.json and print the root (used by bin/compile)
import { createReadStream, existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.csv': 'text/csv; charset=utf-8',
  '.xml': 'application/xml; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.avif': 'image/avif',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.otf': 'font/otf',
  '.wasm': 'application/wasm',
  '.pdf': 'application/pdf',
  '.mp4': 'video/mp4',
  '.webm': 'video/webm',
  '.mp3': 'audio/mpeg',
  '.webmanifest': 'application/manifest+json',
};

/** Reads static.json (optional) and returns the absolute, real root and the options. Throws on bad config. */
function loadConfig(appDir) {
  const file = path.join(appDir, 'static.json');
  let config = {};
  if (existsSync(file)) {
    try {
      config = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new Error(`static.json is not valid JSON: ${err.message}`);
    }
    if (config === null || typeof config !== 'object' || Array.isArray(config)) {
      throw new Error('static.json must hold a JSON object');
    }
  }
  const rootName = config.root ?? '.';
  if (typeof rootName !== 'string') throw new Error('static.json: "root" must be a string');
  const appReal = realpathSync(appDir);
  const root = path.resolve(appReal, rootName);
  if (root !== appReal && !root.startsWith(appReal + path.sep)) {
    throw new Error(`static.json: root "${rootName}" is outside the app`);
  }
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    throw new Error(`static.json: root "${rootName}" is not a directory of the app`);
  }
  return { root: realpathSync(root), rootName, cleanUrls: config.clean_urls === true };
}

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function inside(root, file) {
  return file === root || file.startsWith(root + path.sep);
}

/** Maps a request path to a file under root, or throws an HttpError. */
function resolveFile(config, rawPath) {
  let decoded;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    throw new HttpError(400, 'Bad Request');
  }
  const segments = decoded.split('/');
  // Checked after decoding, so %2e%2e and %2f cannot sneak a ".." past; a backslash is refused too
  // since some clients treat it as a separator.
  if (decoded.includes('\0') || decoded.includes('\\') || segments.includes('..')) {
    throw new HttpError(400, 'Bad Request');
  }
  if (segments.some((s) => s.startsWith('.') && s !== '.well-known')) throw new HttpError(404, 'Not Found');
  const candidates = [path.join(config.root, ...segments)];
  if (decoded.endsWith('/')) candidates[0] = path.join(candidates[0], 'index.html');
  else if (config.cleanUrls && path.extname(decoded) === '') candidates.push(`${candidates[0]}.html`);

  for (const candidate of candidates) {
    let real;
    try {
      real = realpathSync(candidate);
    } catch {
      continue;
    }
    // A symlink inside the root must not lead out of it.
    if (!inside(config.root, real)) throw new HttpError(404, 'Not Found');
    const stat = statSync(real);
    // Rebuilt from the segments: echoing "//host/dir" back would redirect to another site.
    if (stat.isDirectory()) return { redirect: `/${segments.filter(Boolean).map(encodeURIComponent).join('/')}/` };
    if (stat.isFile()) return { file: real, stat };
  }
  throw new HttpError(404, 'Not Found');
}

function handle(config, req, res) {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
    res.end('Method Not Allowed\n');
    return;
  }
  const [rawPath, query] = (req.url ?? '/').split(/\?(.*)/s);
  try {
    if (!rawPath.startsWith('/')) throw new HttpError(400, 'Bad Request');
    const found = resolveFile(config, rawPath);
    if (found.redirect) {
      res.writeHead(301, { location: found.redirect + (query ? `?${query}` : '') });
      res.end();
      return;
    }
    res.writeHead(200, {
      'content-type': TYPES[path.extname(found.file).toLowerCase()] ?? 'application/octet-stream',
      'content-length': found.stat.size,
      'last-modified': found.stat.mtime.toUTCString(),
      'x-content-type-options': 'nosniff',
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    createReadStream(found.file)
      .on('error', () => res.destroy())
      .pipe(res);
  } catch (err) {
    const status = err instanceof HttpError ? err.status : 500;
    const text = err instanceof HttpError ? err.message : 'Internal Server Error';
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(req.method === 'HEAD' ? undefined : `${text}\n`);
  }
}

function main() {
  if (process.argv[2] === '--check') {
    try {
      console.log(loadConfig(path.resolve(process.argv[3] ?? '.')).rootName);
    } catch (err) {
      console.error(err.message);
      process.exit(1);
    }
    return;
  }
  const appDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const config = loadConfig(appDir);
  const port = Number(process.env.PORT);
  if (!Number.isInteger(port) || port <= 0) {
    console.error('static-server: PORT must be set to the port to listen on');
    process.exit(1);
  }
  const host = process.env.HOST || '0.0.0.0';
  const server = createServer((req, res) => {
    res.on('finish', () => console.log(`${req.method} ${req.url} ${res.statusCode}`));
    handle(config, req, res);
  });
  server.listen(port, host, () => console.log(`static-server: serving ${config.root} on ${host}:${port}`));
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
