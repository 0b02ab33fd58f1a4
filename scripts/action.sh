#!/usr/bin/env bash
# The GitHub Action's build step (action.yml): turns the INPUT_* variables
# into a packer build, then writes the outputs (digest, imageid, metadata)
# to $GITHUB_OUTPUT and a summary to $GITHUB_STEP_SUMMARY. Runs anywhere
# with packer and jq on PATH (the test runs it with fake output files).
set -euo pipefail

args=(build "${INPUT_CONTEXT:-.}")
# Lists: one item per line, or comma separated.
items() { tr ',' '\n' <<<"${1:-}" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//' | grep -v '^$' || true; }
lines() { sed 's/^[[:space:]]*//; s/[[:space:]]*$//' <<<"${1:-}" | grep -v '^$' || true; }

while IFS= read -r t; do args+=(-t "$t"); done < <(items "${INPUT_TAGS:-}")
case "${INPUT_PUSH:-false}" in
  true) args+=(--push) ;;
  false | "") ;;
  *) echo "::error::push must be true or false, not '${INPUT_PUSH}'" >&2; exit 2 ;;
esac
[ -n "${INPUT_PLATFORMS:-}" ] && args+=(--platform "$(items "$INPUT_PLATFORMS" | paste -sd, -)")
while IFS= read -r a; do args+=(--build-arg "$a"); done < <(lines "${INPUT_BUILD_ARGS:-}")
while IFS= read -r s; do args+=(--secret "$s"); done < <(lines "${INPUT_SECRETS:-}")
while IFS= read -r o; do args+=(-o "$o"); done < <(lines "${INPUT_OUTPUTS:-}")
[ -n "${INPUT_BASE:-}" ] && args+=(--base "$INPUT_BASE")
[ -n "${INPUT_SBOM:-}" ] && args+=(--sbom "$INPUT_SBOM")
[ -n "${INPUT_CACHE_DIR:-}" ] && args+=(--cache-dir "$INPUT_CACHE_DIR")
[ -n "${INPUT_CACHE_FROM:-}" ] && args+=(--cache-from "$INPUT_CACHE_FROM")
[ -n "${INPUT_CACHE_TO:-}" ] && args+=(--cache-to "$INPUT_CACHE_TO")
case "${INPUT_SIGN:-none}" in
  none | "") ;;
  keyless) args+=(--sign-keyless) ;;
  key)
    if [ -z "${INPUT_SIGN_KEY:-}" ]; then
      echo "::error::sign: key needs sign-key (the cosign private key's path)" >&2
      exit 2
    fi
    args+=(--sign-key "$INPUT_SIGN_KEY")
    ;;
  *) echo "::error::sign must be none, keyless or key, not '${INPUT_SIGN}'" >&2; exit 2 ;;
esac

out=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/packer-action.XXXXXX")
trap 'rm -rf "$out"' EXIT
args+=(--metadata-file "$out/metadata.json" --iidfile "$out/iid")

echo "packer ${args[*]}" >&2
packer "${args[@]}"

meta="$out/metadata.json"
digest=$(jq -r '."containerimage.digest"' "$meta")
{
  echo "digest=$digest"
  echo "imageid=$(cat "$out/iid")"
  # A multi-line value: a delimiter that cannot occur in the JSON.
  delim="packer_metadata_$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
  echo "metadata<<$delim"
  jq -c . "$meta"
  echo "$delim"
} >>"${GITHUB_OUTPUT:-/dev/stdout}"

if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  {
    echo "### packer build"
    echo
    echo "| | |"
    echo "| --- | --- |"
    echo "| image | \`$(jq -r '."image.name" // "(untagged)"' "$meta")\` |"
    echo "| digest | \`$digest\` |"
    jq -r '."packer.images"[] | "| \(.platform) | \(.size) bytes; layers: \([.layers[] | select(.reused)] | length) reused, \([.layers[] | select(.reused | not)] | length) new; SBOM: \(.sbomPackages // 0) packages |"' "$meta"
    jq -r '(."packer.published" // [])[] | "| published | \((.refs // []) + ([.path // empty])) | join(", ")) |"' "$meta"
    jq -r 'if ."packer.signature" then "| signed | \(if ."packer.signature".keyless then "keyless: \(."packer.signature".identity)" else "with a key" end) |" else empty end' "$meta"
  } >>"$GITHUB_STEP_SUMMARY"
fi
