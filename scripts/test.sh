#!/usr/bin/env bash
# make test: unit and end-to-end tests, with the peer tools (scripts/tools.sh)
# built concurrently instead of before.
#
# 1. scripts/tools.sh starts in the background (a no-op once they are cached).
# 2. go test ./... runs meanwhile. A test whose peer tool is not built yet
#    skips and records its name (PACKER_DEFER_TOOLS; see testutil.NeedTool).
# 3. When the tools are ready, the recorded tests run again, for real.
#
# Under CI=true the artifacts the tests build once per machine (the Debian
# test base) are built from scratch into a fresh PACKER_TEST_CACHE.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
start=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ "${CI:-}" = true ] && [ -z "${PACKER_TEST_CACHE:-}" ]; then
  export PACKER_TEST_CACHE="$work/test-cache"
fi

bin=$(./scripts/tools.sh --print-bin)
export PATH="$bin:$PATH"
./scripts/tools.sh >/dev/null 2>"$work/tools.log" &
tools_pid=$!

export PACKER_DEFER_TOOLS="$work/deferred"
PACKER_DEFERRABLE_TOOLS=$(./scripts/tools.sh --names)
export PACKER_DEFERRABLE_TOOLS
: >"$PACKER_DEFER_TOOLS"
status=0
# -parallel 4: the end-to-end tests mostly wait on package registries and
# runc; four at a time on two cores keeps the suite short.
$GO test -count=1 -timeout 30m -parallel 4 ./... || status=$?
echo "test: go test ./... took $(($(date +%s) - start))s" >&2

wait "$tools_pid" || true
cat "$work/tools.log" >&2
unset PACKER_DEFER_TOOLS PACKER_DEFERRABLE_TOOLS
if [ -s "$work/deferred" ]; then
  run=$(sort -u "$work/deferred" | paste -sd '|')
  echo "test: running again now that the peer tools are built: $run" >&2
  $GO test -count=1 -timeout 20m -parallel 4 -run "^($run)\$" ./e2e/ || status=$?
fi
echo "test: done in $(($(date +%s) - start))s" >&2
exit "$status"
