#!/usr/bin/env bash
# make bench: builds packer, then runs internal/bench (medians and ratios
# against baselines measured in the same run). The ko suite needs ko
# v0.19.1: installed here into the tools dir (scripts/tools.sh) when
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(scripts/tools.sh --print-bin)"
export PATH="$bin:$PATH:$(go env GOPATH)/bin"
if ! command -v ko >/dev/null; then
  echo "installing ko v0.19.1 into $bin" >&2
  GOBIN="$bin" go install github.com/google/ko@v0.19.1
fi
go run ./internal/bench -packer bin/packer "$@"
