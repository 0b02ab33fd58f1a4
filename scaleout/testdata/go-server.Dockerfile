# syntax=docker/dockerfile:1
# Made by `packer dockerfile` from packer's golang plan (`packer plan` explains it). Build it with any engine:
#   docker buildx build -t IMAGE .    buildah build -t IMAGE .    podman build -t IMAGE .
# Secrets: --secret id=ID,env=VAR or id=ID,src=FILE (buildx, buildah), seen by the steps as packer build gives them.
# Behind a proxy that re-signs TLS: --build-arg SSL_CERT_FILE=… (and NODE_EXTRA_CA_CERTS, PIP_CERT) with the CA mounted.

# The steps run in this image (the base has no toolchain, or another one).
ARG BUILDER=golang:1.22

# packer's files: the non-root user nonroot (65532), the init and the files packer writes itself.
FROM ${BUILDER} AS packer-files
RUN mkdir -p /out/etc/ssl/certs /out/tmp /out/home/nonroot && \
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > /out/etc/passwd && \
    printf 'root:x:0:\nnonroot:x:65532:\n' > /out/etc/group && \
    printf 'hosts: files dns\n' > /out/etc/nsswitch.conf && \
    cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ca-certificates.crt && \
    chmod 1777 /out/tmp && chown 65532:65532 /out/home/nonroot

# step build
FROM ${BUILDER} AS build
ARG NODE_EXTRA_CA_CERTS
ARG PIP_CERT
ARG SSL_CERT_FILE
ARG TARGETOS
ARG TARGETARCH
ARG TARGETVARIANT
WORKDIR /packer/src
COPY . .
RUN --mount=type=cache,target=/root/.cache/go-build --mount=type=cache,target=/go/pkg/mod --mount=type=secret,id=npmrc --mount=type=secret,id=API_TOKEN ["sh","-c","TARGETOS=\"${TARGETOS:-linux}\"; if [ -z \"${TARGETARCH:-}\" ]; then case \"$(uname -m)\" in x86_64) TARGETARCH=amd64;; aarch64) TARGETARCH=arm64;; armv7l) TARGETARCH=arm;; i686) TARGETARCH=386;; ppc64le) TARGETARCH=ppc64le;; s390x) TARGETARCH=s390x;; riscv64) TARGETARCH=riscv64;; *) TARGETARCH=\"$(uname -m)\";; esac; fi; case \"$TARGETARCH\" in amd64) NODEARCH=x64 TARGETMACHINE=x86_64;; arm64) NODEARCH=arm64 TARGETMACHINE=aarch64;; arm) NODEARCH=arm TARGETMACHINE=armv7l;; 386) NODEARCH=ia32 TARGETMACHINE=i686;; ppc64le) NODEARCH=ppc64 TARGETMACHINE=ppc64le;; s390x) NODEARCH=s390x TARGETMACHINE=s390x;; riscv64) NODEARCH=riscv64 TARGETMACHINE=riscv64;; *) NODEARCH=\"$TARGETARCH\" TARGETMACHINE=\"$TARGETARCH\";; esac; export TARGETOS TARGETARCH TARGETVARIANT NODEARCH TARGETMACHINE\nexport PACKER_SECRETS=/run/secrets; export NPM_CONFIG_USERCONFIG=/run/secrets/npmrc; export API_TOKEN=\"$(cat /run/secrets/API_TOKEN)\"\nexport CGO_ENABLED=0 GOARCH=\"${TARGETARCH}\" GOOS=\"${TARGETOS}\"\ngo build -trimpath -buildvcs=false '-ldflags=-s -w' -o .packer-out/hello-server ."]
RUN mkdir -p /packer/layers/app && tar -C /packer/src/.packer-out --ignore-failed-read -cf - ./hello-server | tar -xf - -C /packer/layers/app

# The image: the plan's layers in its order, non-root.
FROM scratch
COPY --from=packer-files /out/ /
COPY ["templates","/app/templates"]
COPY --from=build /packer/layers/app/ /app/
ENV PORT="8080"
EXPOSE 8080
WORKDIR /app
USER 65532:65532
ENTRYPOINT ["/app/hello-server"]
