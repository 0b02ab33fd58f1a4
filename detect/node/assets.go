package node

// signalsJS is preloaded into every node process (NODE_OPTIONS=--require):
// as PID 1, node ignores SIGTERM and SIGINT unless a handler is installed,
// so a container would wait for the runtime's kill timeout. This exits on
// the signal unless the app installed its own handler (graceful shutdown),
// which then decides.
const signalsJS = `'use strict';
// Installed by packer: exit on SIGTERM/SIGINT unless the app handles them.
for (const [sig, code] of [['SIGTERM', 143], ['SIGINT', 130]]) {
  process.on(sig, function packerDefault() {
    if (process.listenerCount(sig) === 1) process.exit(code);
  });
}
`

// serverJS is the small static file server for single-page apps and
// static sites: files from /app/public, index.html for unknown routes
// without an extension (or, for a site, NAME.html and 404.html),
// content types by extension, long-lived caching for hashed assets and
// no-cache for HTML. No dependencies.
const serverJS = `'use strict';
// Static file server written by packer for single-page apps.
const http = require('http');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, 'public');
const port = Number(process.env.PORT || 8080);
const host = process.env.HOST || '0.0.0.0';
const types = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.map': 'application/json', '.svg': 'image/svg+xml',
  '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.gif': 'image/gif', '.webp': 'image/webp',
  '.avif': 'image/avif', '.ico': 'image/x-icon', '.txt': 'text/plain; charset=utf-8', '.xml': 'application/xml',
  '.woff': 'font/woff', '.woff2': 'font/woff2', '.ttf': 'font/ttf', '.otf': 'font/otf', '.wasm': 'application/wasm',
  '.webmanifest': 'application/manifest+json', '.mp4': 'video/mp4', '.webm': 'video/webm', '.pdf': 'application/pdf',
};
const hashed = /[.-][0-9a-zA-Z_-]{8,}\.[a-z0-9]+$/;

function send(req, res, file, status) {
  fs.stat(file, (err, st) => {
    if (err || !st.isFile()) { res.writeHead(404, {'Content-Type': 'text/plain'}); res.end('not found\n'); return; }
    const ext = path.extname(file).toLowerCase();
    const headers = {
      'Content-Type': types[ext] || 'application/octet-stream',
      'Content-Length': st.size,
      'X-Content-Type-Options': 'nosniff',
      'Cache-Control': ext === '.html' ? 'no-cache' : (hashed.test(file) ? 'public, max-age=31536000, immutable' : 'public, max-age=3600'),
    };
    res.writeHead(status, headers);
    if (req.method === 'HEAD') { res.end(); return; }
    fs.createReadStream(file).pipe(res);
  });
}

// PACKER_STATIC=site: a multi-page site (clean URLs: /about serves
// about.html; unknown paths get 404.html with status 404). Otherwise a
// single-page app: routes without an extension get index.html.
const site = process.env.PACKER_STATIC === 'site';

function notFound(req, res) {
  const page = path.join(root, '404.html');
  fs.stat(page, (err, st) => {
    if (site && !err && st.isFile()) return send(req, res, page, 404);
    res.writeHead(404, {'Content-Type': 'text/plain'}); res.end('not found\n');
  });
}

const server = http.createServer((req, res) => {
  if (req.method !== 'GET' && req.method !== 'HEAD') { res.writeHead(405, {'Allow': 'GET, HEAD'}); res.end(); return; }
  let p;
  try { p = decodeURIComponent(new URL(req.url, 'http://x').pathname); } catch { res.writeHead(400); res.end(); return; }
  const file = path.join(root, path.normalize(p));
  if (file !== root && !file.startsWith(root + path.sep)) { res.writeHead(403); res.end(); return; }
  fs.stat(file, (err, st) => {
    if (!err && st.isDirectory()) return send(req, res, path.join(file, 'index.html'), 200);
    if (!err && st.isFile()) return send(req, res, file, 200);
    if (path.extname(p) === '') {
      // SPA fallback: routes without a file extension get index.html.
      if (!site) return send(req, res, path.join(root, 'index.html'), 200);
      return fs.stat(file + '.html', (e, hs) => (!e && hs.isFile()) ? send(req, res, file + '.html', 200) : notFound(req, res));
    }
    notFound(req, res);
  });
});
server.listen(port, host, () => console.log('serving ' + root + ' on ' + host + ':' + port));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => { server.close(); process.exit(0); });
`

// yarn1FocusJS installs one yarn 1 workspace and the workspaces it uses.
// yarn 1 has no per-workspace install, and in workspaces its
// --frozen-lockfile lets yarn resolve what the lockfile lacks (yarnpkg/yarn
// #5840, never fixed in yarn 1). So "before" narrows the root package.json's
// workspaces and keeps yarn.lock; yarn then installs without
// --frozen-lockfile; "after" fails unless every entry yarn wrote was already
// in the lockfile, byte for byte (yarn drops the other workspaces' entries,
// which is expected).
const yarn1FocusJS = `'use strict';
// Written by packer: narrow a yarn 1 workspace install; check the lockfile.
const fs = require('fs');
const [mode, ...dirs] = process.argv.slice(2);
const saved = '.packer/yarn.lock.orig';
if (mode === 'before') {
  const pkg = JSON.parse(fs.readFileSync('package.json', 'utf8'));
  if (Array.isArray(pkg.workspaces)) pkg.workspaces = dirs;
  else pkg.workspaces = Object.assign({}, pkg.workspaces, { packages: dirs });
  fs.writeFileSync('package.json', JSON.stringify(pkg, null, 2) + '\n');
  // The first install in this staging copy keeps the committed lockfile;
  // a later one (dev dependencies) is checked against that same file.
  if (!fs.existsSync(saved)) fs.copyFileSync('yarn.lock', saved);
} else {
  const entries = (text) => {
    const m = new Map();
    for (const block of text.split(/\n\s*\n/)) {
      const lines = block.split('\n').filter((l) => l.trim() && !l.startsWith('#'));
      if (!lines.length) continue;
      const body = lines.slice(1).join('\n');
      for (const p of lines[0].replace(/:$/, '').split(', ')) m.set(p.replace(/^"|"$/g, ''), body);
    }
    return m;
  };
  const before = entries(fs.readFileSync(saved, 'utf8'));
  const after = entries(fs.readFileSync('yarn.lock', 'utf8'));
  const changed = [...after].filter(([p, body]) => before.get(p) !== body).map(([p]) => p);
  if (changed.length) {
    console.error('yarn.lock does not match package.json (yarn had to resolve ' + changed.join(', ') + '); run yarn install and commit yarn.lock');
    process.exit(1);
  }
}
`
