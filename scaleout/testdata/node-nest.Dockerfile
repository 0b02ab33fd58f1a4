# syntax=docker/dockerfile:1
# Made by `packer dockerfile` from packer's node plan (`packer plan` explains it). Build it with any engine:
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
    printf ''\''use strict'\'';\n// Installed by packer: exit on SIGTERM/SIGINT unless the app handles them.\nfor (const [sig, code] of [['\''SIGTERM'\'', 143], ['\''SIGINT'\'', 130]]) {\n  process.on(sig, function packerDefault() {\n    if (process.listenerCount(sig) === 1) process.exit(code);\n  });\n}\n' > /out/opt/packer/signals.js

# step deps, cached by package-lock.json
FROM ${BASE} AS deps
ARG NODE_EXTRA_CA_CERTS
ARG PIP_CERT
ARG SSL_CERT_FILE
ARG TARGETOS
ARG TARGETARCH
ARG TARGETVARIANT
WORKDIR /packer/src
COPY ["package-lock.json","package.json","./"]
RUN --mount=type=cache,target=/root/.npm --mount=type=cache,target=/root/.cache --mount=type=cache,target=/root/.local/share/pnpm/store --mount=type=cache,target=/usr/local/share/.cache/yarn --mount=type=cache,target=/root/.bun/install/cache --mount=type=secret,id=npmrc --mount=type=secret,id=API_TOKEN ["sh","-c","TARGETOS=\"${TARGETOS:-linux}\"; if [ -z \"${TARGETARCH:-}\" ]; then case \"$(uname -m)\" in x86_64) TARGETARCH=amd64;; aarch64) TARGETARCH=arm64;; armv7l) TARGETARCH=arm;; i686) TARGETARCH=386;; ppc64le) TARGETARCH=ppc64le;; s390x) TARGETARCH=s390x;; riscv64) TARGETARCH=riscv64;; *) TARGETARCH=\"$(uname -m)\";; esac; fi; case \"$TARGETARCH\" in amd64) NODEARCH=x64 TARGETMACHINE=x86_64;; arm64) NODEARCH=arm64 TARGETMACHINE=aarch64;; arm) NODEARCH=arm TARGETMACHINE=armv7l;; 386) NODEARCH=ia32 TARGETMACHINE=i686;; ppc64le) NODEARCH=ppc64 TARGETMACHINE=ppc64le;; s390x) NODEARCH=s390x TARGETMACHINE=s390x;; riscv64) NODEARCH=riscv64 TARGETMACHINE=riscv64;; *) NODEARCH=\"$TARGETARCH\" TARGETMACHINE=\"$TARGETARCH\";; esac; export TARGETOS TARGETARCH TARGETVARIANT NODEARCH TARGETMACHINE\nexport PACKER_SECRETS=/run/secrets; export NPM_CONFIG_USERCONFIG=/run/secrets/npmrc; export API_TOKEN=\"$(cat /run/secrets/API_TOKEN)\"\nexport NODE_ENV=production\nnpm ci --omit=dev --no-audit --no-fund --os=linux --cpu=\"${NODEARCH}\""]
RUN mkdir -p /packer/layers/deps && tar -C /packer/src --ignore-failed-read -cf - ./node_modules | tar -xf - -C /packer/layers/deps

# step devdeps, cached by package-lock.json
FROM ${BASE} AS devdeps
ARG NODE_EXTRA_CA_CERTS
ARG PIP_CERT
ARG SSL_CERT_FILE
WORKDIR /packer/src
COPY ["package-lock.json","package.json","./"]
RUN --mount=type=cache,target=/root/.npm --mount=type=cache,target=/root/.cache --mount=type=cache,target=/root/.local/share/pnpm/store --mount=type=cache,target=/usr/local/share/.cache/yarn --mount=type=cache,target=/root/.bun/install/cache --mount=type=secret,id=npmrc --mount=type=secret,id=API_TOKEN ["sh","-c","export PACKER_SECRETS=/run/secrets; export NPM_CONFIG_USERCONFIG=/run/secrets/npmrc; export API_TOKEN=\"$(cat /run/secrets/API_TOKEN)\"\nnpm ci --no-audit --no-fund"]
RUN mkdir -p /packer/layers/devdeps && tar -C /packer/src --ignore-failed-read -cf - ./node_modules | tar -xf - -C /packer/layers/devdeps

# step build
FROM ${BASE} AS build
ARG NODE_EXTRA_CA_CERTS
ARG PIP_CERT
ARG SSL_CERT_FILE
WORKDIR /packer/src
COPY . .
COPY --from=devdeps /packer/layers/devdeps/ /packer/src/
RUN --mount=type=cache,target=/root/.npm --mount=type=cache,target=/root/.cache --mount=type=cache,target=/root/.local/share/pnpm/store --mount=type=cache,target=/usr/local/share/.cache/yarn --mount=type=cache,target=/root/.bun/install/cache --mount=type=secret,id=npmrc --mount=type=secret,id=API_TOKEN ["sh","-c","export PACKER_SECRETS=/run/secrets; export NPM_CONFIG_USERCONFIG=/run/secrets/npmrc; export API_TOKEN=\"$(cat /run/secrets/API_TOKEN)\"\nnpm run build"]
RUN mkdir -p /packer/layers/app && tar -C /packer/src --ignore-failed-read -cf - --anchored --exclude=./node_modules --no-anchored --exclude='*.ts' --exclude='*.tsx' --exclude='*.mts' --exclude='*.cts' --exclude='*.tsbuildinfo' . | tar -xf - -C /packer/layers/app

# The image: the plan's layers in its order, non-root.
FROM ${BASE}
COPY --from=packer-files /out/ /
COPY --from=deps /packer/layers/deps/ /app/
COPY --from=build /packer/layers/app/ /app/
ENV HOST="0.0.0.0"
ENV NODE_ENV="production"
ENV NODE_OPTIONS="--require=/opt/packer/signals.js"
ENV PORT="8080"
EXPOSE 8080
WORKDIR /app
USER 65532:65532
ENTRYPOINT ["/opt/packer/init","node","dist/main"]
