#!/usr/bin/env bash
# make fuzz: runs every Fuzz target for FUZZTIME (default 30s) each.
# A crasher is written under the package's testdata/fuzz/NAME/ and then
# runs as a regression case in plain `go test`.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
time=${FUZZTIME:-30s}
status=0
for pkg in $($GO list ./...); do
  for name in $($GO test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "fuzz: $pkg $name ($time)" >&2
    $GO test -run '^$' -fuzz "^${name}\$" -fuzztime "$time" "$pkg" || status=1
  done
done
exit "$status"
