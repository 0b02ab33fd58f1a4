#!/usr/bin/env bash
# Builds the peer tools the supply-chain tests use (cosign) with go install,
# once per machine, into the user cache dir; prints the bin dir to add to PATH.
set -euo pipefail
bin="${XDG_CACHE_HOME:-$HOME/.cache}/packer-tools/bin"
mkdir -p "$bin"
if [ ! -x "$bin/cosign" ]; then
  echo "tools: building cosign v2 (go install, several minutes the first time)" >&2
  (cd / && GOBIN="$bin" GOFLAGS=-mod=mod go install github.com/sigstore/cosign/v2/cmd/cosign@v2.4.3) >&2 \
    || echo "tools: could not build cosign; the signature tests will skip (fail under CI)" >&2
fi
echo "$bin"
