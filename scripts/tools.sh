#!/usr/bin/env bash
# Builds the peer tools the supply-chain tests use — cosign v2 (as cosign),
# v3 (as cosign-v3), syft and Fulcio (the keyless certificate authority the
# e2e tests run) — with go install, once per machine, into the user cache
# dir; prints the bin dir to add to PATH.
set -euo pipefail
bin="${XDG_CACHE_HOME:-$HOME/.cache}/packer-tools/bin"
mkdir -p "$bin"
install() { # name module@version [binary]
  local name=$1 mod=$2 binary=${3:-cosign} tmp
  [ -x "$bin/$name" ] && return 0
  echo "tools: building $name ($mod; go install takes minutes the first time)" >&2
  tmp=$(mktemp -d)
  if (cd / && GOBIN="$tmp" GOFLAGS=-mod=mod go install "$mod") >&2; then
    mv "$tmp/$binary" "$bin/$name"
  else
    echo "tools: could not build $name; the signature tests will skip (fail under CI)" >&2
  fi
  rm -rf "$tmp"
}
install cosign github.com/sigstore/cosign/v2/cmd/cosign@v2.4.3
install cosign-v3 github.com/sigstore/cosign/v3/cmd/cosign@v3.1.3
install syft github.com/anchore/syft/cmd/syft@v1.57.1 syft
install fulcio github.com/sigstore/fulcio@v1.8.8 fulcio
echo "$bin"
