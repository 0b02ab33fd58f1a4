# syntax=docker/dockerfile:1
# Made by `packer dockerfile` from packer's python plan (`packer plan` explains it). Build it with any engine:
#   docker buildx build -t IMAGE .    buildah build -t IMAGE .    podman build -t IMAGE .
# Secrets: --secret id=ID,env=VAR or id=ID,src=FILE (buildx, buildah), seen by the steps as packer build gives them.
# Behind a proxy that re-signs TLS: --build-arg SSL_CERT_FILE=… (and NODE_EXTRA_CA_CERTS, PIP_CERT) with the CA mounted.

ARG BASE=python:3.13-slim

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
    t=$(for f in /usr/bin/tini /sbin/tini /usr/sbin/tini; do [ -x $f ] && echo $f && break; done); b=$(for f in /usr/bin/bash /bin/bash; do [ -x $f ] && echo $f && break; done); if [ -n "$t" ]; then printf '#!/bin/sh\nexec %s -- "$@"\n' "$t" > /out/opt/packer/init && chmod 755 /out/opt/packer/init; elif [ -n "$b" ]; then { echo "#!$b"; printf '# packer init: PID 1 for images whose base has no tini.\n"$@" &\napp=$!\nfor sig in TERM INT HUP QUIT USR1 USR2; do\n  trap "kill -$sig $app 2>/dev/null" "$sig"\ndone\nwhile :; do\n  wait "$app"\n  status=$?\n  kill -0 "$app" 2>/dev/null || exit "$status"\ndone\n'; } > /out/opt/packer/init && chmod 755 /out/opt/packer/init; else printf '#!/bin/sh\nexec "$@"\n' > /out/opt/packer/init && chmod 755 /out/opt/packer/init; fi

# step deps, cached by requirements.txt, pip.conf
FROM ${BASE} AS deps
ARG NODE_EXTRA_CA_CERTS
ARG PIP_CERT
ARG SSL_CERT_FILE
ARG TARGETOS
ARG TARGETARCH
ARG TARGETVARIANT
WORKDIR /packer/src
COPY ["requirements.txt","./"]
RUN --mount=type=cache,target=/root/.cache --mount=type=secret,id=npmrc --mount=type=secret,id=API_TOKEN ["sh","-c","TARGETOS=\"${TARGETOS:-linux}\"; if [ -z \"${TARGETARCH:-}\" ]; then case \"$(uname -m)\" in x86_64) TARGETARCH=amd64;; aarch64) TARGETARCH=arm64;; armv7l) TARGETARCH=arm;; i686) TARGETARCH=386;; ppc64le) TARGETARCH=ppc64le;; s390x) TARGETARCH=s390x;; riscv64) TARGETARCH=riscv64;; *) TARGETARCH=\"$(uname -m)\";; esac; fi; case \"$TARGETARCH\" in amd64) NODEARCH=x64 TARGETMACHINE=x86_64;; arm64) NODEARCH=arm64 TARGETMACHINE=aarch64;; arm) NODEARCH=arm TARGETMACHINE=armv7l;; 386) NODEARCH=ia32 TARGETMACHINE=i686;; ppc64le) NODEARCH=ppc64 TARGETMACHINE=ppc64le;; s390x) NODEARCH=s390x TARGETMACHINE=s390x;; riscv64) NODEARCH=riscv64 TARGETMACHINE=riscv64;; *) NODEARCH=\"$TARGETARCH\" TARGETMACHINE=\"$TARGETARCH\";; esac; export TARGETOS TARGETARCH TARGETVARIANT NODEARCH TARGETMACHINE\nexport PACKER_SECRETS=/run/secrets; export NPM_CONFIG_USERCONFIG=/run/secrets/npmrc; export API_TOKEN=\"$(cat /run/secrets/API_TOKEN)\"\nset -e\nSTAGE=$PWD\nREQ=\"$STAGE/requirements.txt\"\n# A .python-version naming an interpreter this machine lacks breaks pyenv's\n# python3 in the app directory; fall back to the machine's default then.\npython3 -c '' 2>/dev/null || cd /\nHOST=$(python3 -c 'import sys, platform; print(\"%d.%d %s\" % (sys.version_info[0], sys.version_info[1], platform.machine()))')\nif [ \"$HOST\" = \"3.13 ${TARGETMACHINE}\" ]; then\n  # Source builds leave no debug info, which would record pip's random\n  # build directory: the same input gives the same bytes.\n  export CFLAGS=\"${CFLAGS:-} -g0\" CXXFLAGS=\"${CXXFLAGS:-} -g0\"\n  python3 -m pip install --no-compile --no-warn-conflicts --disable-pip-version-check --no-input --root-user-action=ignore --target \"$STAGE/.packer-out/packages\" -r \"$REQ\"\n  python3 -m compileall -q -j 0 --invalidation-mode unchecked-hash \"$STAGE/.packer-out/packages\"\nelse\n  echo \"python $HOST here, 3.13 ${TARGETMACHINE} in the image: installing binary wheels for the image; bytecode is compiled on first import\"\n  python3 -m pip install --no-compile --no-warn-conflicts --disable-pip-version-check --no-input --root-user-action=ignore --target \"$STAGE/.packer-out/packages\" -r \"$REQ\" --python-version 3.13 --implementation cp --only-binary=:all: --platform manylinux_2_36_${TARGETMACHINE} --platform manylinux_2_35_${TARGETMACHINE} --platform manylinux_2_34_${TARGETMACHINE} --platform manylinux_2_33_${TARGETMACHINE} --platform manylinux_2_32_${TARGETMACHINE} --platform manylinux_2_31_${TARGETMACHINE} --platform manylinux_2_30_${TARGETMACHINE} --platform manylinux_2_29_${TARGETMACHINE} --platform manylinux_2_28_${TARGETMACHINE} --platform manylinux_2_27_${TARGETMACHINE} --platform manylinux_2_26_${TARGETMACHINE} --platform manylinux_2_25_${TARGETMACHINE} --platform manylinux_2_24_${TARGETMACHINE} --platform manylinux_2_23_${TARGETMACHINE} --platform manylinux_2_22_${TARGETMACHINE} --platform manylinux_2_21_${TARGETMACHINE} --platform manylinux_2_20_${TARGETMACHINE} --platform manylinux_2_19_${TARGETMACHINE} --platform manylinux_2_18_${TARGETMACHINE} --platform manylinux_2_17_${TARGETMACHINE} --platform manylinux2014_${TARGETMACHINE}\nfi"]
RUN mkdir -p /packer/layers/deps && tar -C /packer/src/.packer-out/packages --ignore-failed-read -cf - --anchored --exclude=./bin . | tar -xf - -C /packer/layers/deps

# step collectstatic
FROM ${BASE} AS collectstatic
ARG NODE_EXTRA_CA_CERTS
ARG PIP_CERT
ARG SSL_CERT_FILE
WORKDIR /packer/src
COPY . .
COPY --from=deps /packer/layers/deps/ /packer/src/.packer-out/packages/
RUN --mount=type=cache,target=/root/.cache --mount=type=secret,id=npmrc --mount=type=secret,id=API_TOKEN ["sh","-c","export PACKER_SECRETS=/run/secrets; export NPM_CONFIG_USERCONFIG=/run/secrets/npmrc; export API_TOKEN=\"$(cat /run/secrets/API_TOKEN)\"\nset -e\nSTAGE=$PWD\n# A .python-version naming an interpreter this machine lacks breaks pyenv's\n# python3 in the app directory; fall back to the machine's default then.\npython3 -c '' 2>/dev/null || cd /\nPYTHONPATH=\"$STAGE/.packer-out/packages\" PYTHONDONTWRITEBYTECODE=1 python3 \"$STAGE/manage.py\" collectstatic --noinput"]
RUN mkdir -p /packer/layers/static && tar -C /packer/src --ignore-failed-read -cf - ./staticfiles | tar -xf - -C /packer/layers/static

# The image: the plan's layers in its order, non-root.
FROM ${BASE}
COPY --from=packer-files /out/ /
COPY --from=deps /packer/layers/deps/ /opt/python/packages/
COPY . /app/
COPY --from=collectstatic /packer/layers/static/ /app/
ENV DJANGO_SETTINGS_MODULE="mysite.settings"
ENV PORT="8080"
ENV PYTHONDONTWRITEBYTECODE="1"
ENV PYTHONPATH="/opt/python/packages"
ENV PYTHONUNBUFFERED="1"
EXPOSE 8080
WORKDIR /app
USER 65532:65532
ENTRYPOINT ["/opt/packer/init","python3","-m","gunicorn","mysite.wsgi","--log-file","-"]
