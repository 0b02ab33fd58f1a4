#!/usr/bin/env bash
# Builds the peer tools the supply-chain tests use, with go install, once
# per machine, into the user cache dir, and prints the bin dir to add to
# PATH:
#   cosign     v2, verifies the signatures packer writes (legacy .sig format)
#   cosign-v3  v3, verifies the same signatures and the bundle format
#   syft       the SBOM peer packer's SBOM is compared with
#   fulcio     the keyless certificate authority the e2e tests run
#   buildkitd  the BuildKit daemon --builder buildkit is tested against (its
#              module has exclude directives, which go install refuses: it is
#              built with go build inside the downloaded module)
# Each tool is built only at the version below, skipped when its binary is
# already cached at that version, and all missing ones are built at once,
# sharing one GOCACHE and GOMODCACHE. Per-tool build times go to stderr.
# A cold build of all four takes ~25-35 min on a quiet 2-core machine.
set -euo pipefail
bin="${XDG_CACHE_HOME:-$HOME/.cache}/packer-tools/bin"
mkdir -p "$bin"
[ "${1:-}" = --print-bin ] && { echo "$bin"; exit 0; }
tools=( # name module@version binary
  "cosign    github.com/sigstore/cosign/v2/cmd/cosign@v2.4.3 cosign"
  "cosign-v3 github.com/sigstore/cosign/v3/cmd/cosign@v3.1.3 cosign"
  "syft      github.com/anchore/syft/cmd/syft@v1.57.1        syft"
  "fulcio    github.com/sigstore/fulcio@v1.8.8               fulcio"
  "buildkitd github.com/moby/buildkit@v0.34.2:./cmd/buildkitd  buildkitd"
)
if [ "${1:-}" = --names ]; then # the tools this script builds
  for t in "${tools[@]}"; do read -r name _ <<<"$t"; printf '%s ' "$name"; done
  echo
  exit 0
fi
# One cache for every build, whatever the caller's environment says.
GOCACHE=$(go env GOCACHE)
GOMODCACHE=$(go env GOMODCACHE)
export GOCACHE GOMODCACHE GOFLAGS=-mod=mod

build() { # name module@version binary
  local name=$1 mod=$2 binary=$3 tmp start
  start=$(date +%s)
  tmp=$(mktemp -d "$bin/../build.XXXXXX") # same file system: the mv below is atomic
  local ok=false
  if [[ $mod == *:* ]]; then # MODULE@VERSION:./PKG, built inside the module
    local dir
    if dir=$(cd / && go mod download -json "${mod%%:*}" 2>"$tmp.log" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p') && [ -n "$dir" ] &&
      (cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$tmp/$binary" "${mod#*:}") >>"$tmp.log" 2>&1; then
      ok=true
    fi
  elif (cd / && GOBIN="$tmp" go install -trimpath -ldflags='-s -w' "$mod") >"$tmp.log" 2>&1; then
    ok=true
  fi
  if $ok; then
    mv "$tmp/$binary" "$bin/$name"
    echo "$mod" >"$bin/.$name.version"
    echo "tools: built $name ($mod) in $(($(date +%s) - start))s" >&2
  else
    echo "tools: could not build $name ($mod) after $(($(date +%s) - start))s; the tests that need it skip (fail under CI):" >&2
    tail -n 20 "$tmp.log" >&2
  fi
  rm -rf "$tmp" "$tmp.log"
}

pids=()
for t in "${tools[@]}"; do
  read -r name mod binary <<<"$t"
  if [ -x "$bin/$name" ] && [ "$(cat "$bin/.$name.version" 2>/dev/null)" = "$mod" ]; then
    continue
  fi
  echo "tools: building $name ($mod); a cold go install takes minutes" >&2
  build "$name" "$mod" "$binary" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
echo "$bin"
