#!/usr/bin/env bash
# make bench: builds packer, then runs internal/bench (medians and ratios
# against baselines measured in the same run). Needs ko for the ko suite:
#   go install github.com/google/ko@v0.19.1
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:$(go env GOPATH)/bin"
go run ./internal/bench -packer bin/packer "$@"
