# syntax=docker/dockerfile:1
# Made by `packer dockerfile` from packer's static plan (`packer plan` explains it). Build it with any engine:
#   docker buildx build -t IMAGE .    buildah build -t IMAGE .    podman build -t IMAGE .
# Secrets: --secret id=ID,env=VAR or id=ID,src=FILE (buildx, buildah), seen by the steps as packer build gives them.
# Behind a proxy that re-signs TLS: --build-arg SSL_CERT_FILE=… (and NODE_EXTRA_CA_CERTS, PIP_CERT) with the CA mounted.

ARG BASE=node:22-slim

# packer's files: the non-root user nonroot (65532), the init and the files packer writes itself.
FROM ${BASE} AS packer-files
RUN mkdir -p /out/etc /out/tmp /out/home/nonroot && chmod 1777 /out/tmp && \
    { cp /etc/passwd /etc/group /out/etc/ 2>/dev/null || true; } && \
    { [ -f /out/etc/passwd ] || printf 'root:x:0:0:root:/root:/sbin/nologin\n' > /out/etc/passwd; } && \
    { grep -q '^[^:]*:[^:]*:65532:' /out/etc/passwd || printf 'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >> /out/etc/passwd; } && \
    { [ -f /out/etc/group ] || printf 'root:x:0:\n' > /out/etc/group; } && \
    { grep -q '^[^:]*:[^:]*:65532:' /out/etc/group || printf 'nonroot:x:65532:\n' >> /out/etc/group; } && \
    chown 65532:65532 /out/home/nonroot && \
    mkdir -p /out/opt/packer && \
    t=$(for f in /usr/bin/tini /sbin/tini /usr/sbin/tini; do [ -x $f ] && echo $f && break; done); b=$(for f in /usr/bin/bash /bin/bash; do [ -x $f ] && echo $f && break; done); if [ -n "$t" ]; then printf '#!/bin/sh\nexec %s -- "$@"\n' "$t" > /out/opt/packer/init && chmod 755 /out/opt/packer/init; elif [ -n "$b" ]; then { echo "#!$b"; printf '# packer init: PID 1 for images whose base has no tini.\n"$@" &\napp=$!\nfor sig in TERM INT HUP QUIT USR1 USR2; do\n  trap "kill -$sig $app 2>/dev/null" "$sig"\ndone\nwhile :; do\n  wait "$app"\n  status=$?\n  kill -0 "$app" 2>/dev/null || exit "$status"\ndone\n'; } > /out/opt/packer/init && chmod 755 /out/opt/packer/init; else printf '#!/bin/sh\nexec "$@"\n' > /out/opt/packer/init && chmod 755 /out/opt/packer/init; fi && \
    mkdir -p /out/opt/packer && \
    printf ''\''use strict'\'';\n// Installed by packer: exit on SIGTERM/SIGINT unless the app handles them.\nfor (const [sig, code] of [['\''SIGTERM'\'', 143], ['\''SIGINT'\'', 130]]) {\n  process.on(sig, function packerDefault() {\n    if (process.listenerCount(sig) === 1) process.exit(code);\n  });\n}\n' > /out/opt/packer/signals.js && \
    mkdir -p /out/app && \
    printf ''\''use strict'\'';\n// Static file server written by packer for single-page apps.\nconst http = require('\''http'\'');\nconst fs = require('\''fs'\'');\nconst path = require('\''path'\'');\n\nconst root = path.join(__dirname, '\''public'\'');\nconst port = Number(process.env.PORT || 8080);\nconst host = process.env.HOST || '\''0.0.0.0'\'';\nconst types = {\n  '\''.html'\'': '\''text/html; charset=utf-8'\'', '\''.js'\'': '\''text/javascript; charset=utf-8'\'', '\''.mjs'\'': '\''text/javascript; charset=utf-8'\'',\n  '\''.css'\'': '\''text/css; charset=utf-8'\'', '\''.json'\'': '\''application/json'\'', '\''.map'\'': '\''application/json'\'', '\''.svg'\'': '\''image/svg+xml'\'',\n  '\''.png'\'': '\''image/png'\'', '\''.jpg'\'': '\''image/jpeg'\'', '\''.jpeg'\'': '\''image/jpeg'\'', '\''.gif'\'': '\''image/gif'\'', '\''.webp'\'': '\''image/webp'\'',\n  '\''.avif'\'': '\''image/avif'\'', '\''.ico'\'': '\''image/x-icon'\'', '\''.txt'\'': '\''text/plain; charset=utf-8'\'', '\''.xml'\'': '\''application/xml'\'',\n  '\''.woff'\'': '\''font/woff'\'', '\''.woff2'\'': '\''font/woff2'\'', '\''.ttf'\'': '\''font/ttf'\'', '\''.otf'\'': '\''font/otf'\'', '\''.wasm'\'': '\''application/wasm'\'',\n  '\''.webmanifest'\'': '\''application/manifest+json'\'', '\''.mp4'\'': '\''video/mp4'\'', '\''.webm'\'': '\''video/webm'\'', '\''.pdf'\'': '\''application/pdf'\'',\n};\nconst hashed = /[.-][0-9a-zA-Z_-]{8,}\\.[a-z0-9]+$/;\n\nfunction send(req, res, file, status) {\n  fs.stat(file, (err, st) => {\n    if (err || !st.isFile()) { res.writeHead(404, {'\''Content-Type'\'': '\''text/plain'\''}); res.end('\''not found\\n'\''); return; }\n    const ext = path.extname(file).toLowerCase();\n    const headers = {\n      '\''Content-Type'\'': types[ext] || '\''application/octet-stream'\'',\n      '\''Content-Length'\'': st.size,\n      '\''X-Content-Type-Options'\'': '\''nosniff'\'',\n      '\''Cache-Control'\'': ext === '\''.html'\'' ? '\''no-cache'\'' : (hashed.test(file) ? '\''public, max-age=31536000, immutable'\'' : '\''public, max-age=3600'\''),\n    };\n    res.writeHead(status, headers);\n    if (req.method === '\''HEAD'\'') { res.end(); return; }\n    fs.createReadStream(file).pipe(res);\n  });\n}\n\n// PACKER_STATIC=site: a multi-page site (clean URLs: /about serves\n// about.html; unknown paths get 404.html with status 404). Otherwise a\n// single-page app: routes without an extension get index.html.\nconst site = process.env.PACKER_STATIC === '\''site'\'';\n\nfunction notFound(req, res) {\n  const page = path.join(root, '\''404.html'\'');\n  fs.stat(page, (err, st) => {\n    if (site && !err && st.isFile()) return send(req, res, page, 404);\n    res.writeHead(404, {'\''Content-Type'\'': '\''text/plain'\''}); res.end('\''not found\\n'\'');\n  });\n}\n\nconst server = http.createServer((req, res) => {\n  if (req.method !== '\''GET'\'' && req.method !== '\''HEAD'\'') { res.writeHead(405, {'\''Allow'\'': '\''GET, HEAD'\''}); res.end(); return; }\n  let p;\n  try { p = decodeURIComponent(new URL(req.url, '\''http://x'\'').pathname); } catch { res.writeHead(400); res.end(); return; }\n  const file = path.join(root, path.normalize(p));\n  if (file !== root && !file.startsWith(root + path.sep)) { res.writeHead(403); res.end(); return; }\n  fs.stat(file, (err, st) => {\n    if (!err && st.isDirectory()) return send(req, res, path.join(file, '\''index.html'\''), 200);\n    if (!err && st.isFile()) return send(req, res, file, 200);\n    if (path.extname(p) === '\'''\'') {\n      // SPA fallback: routes without a file extension get index.html.\n      if (!site) return send(req, res, path.join(root, '\''index.html'\''), 200);\n      return fs.stat(file + '\''.html'\'', (e, hs) => (!e && hs.isFile()) ? send(req, res, file + '\''.html'\'', 200) : notFound(req, res));\n    }\n    notFound(req, res);\n  });\n});\nserver.listen(port, host, () => console.log('\''serving '\'' + root + '\'' on '\'' + host + '\'':'\'' + port));\nfor (const sig of ['\''SIGTERM'\'', '\''SIGINT'\'']) process.on(sig, () => { server.close(); process.exit(0); });\n' > /out/app/server.js

# the context for layer site, without packer.toml, .dockerignore, Dockerfile, README*, LICENSE*
FROM ${BASE} AS context-site
COPY . /packer/src/
RUN mkdir -p /packer/layers/site && tar -C /packer/src --ignore-failed-read -cf - --anchored --exclude=./packer.toml --exclude=./.dockerignore --exclude=./Dockerfile --exclude='./README*' --exclude='./LICENSE*' . | tar -xf - -C /packer/layers/site

# The image: the plan's layers in its order, non-root.
FROM ${BASE}
COPY --from=packer-files /out/ /
COPY --from=context-site /packer/layers/site/ /app/public/
ENV HOST="0.0.0.0"
ENV NODE_ENV="production"
ENV NODE_OPTIONS="--require=/opt/packer/signals.js"
ENV PACKER_STATIC="site"
ENV PORT="8080"
EXPOSE 8080
WORKDIR /app
USER 65532:65532
ENTRYPOINT ["/opt/packer/init","node","/app/server.js"]
