#!/usr/bin/env bash
# Installs the external tools packer's end-to-end tests use, when missing:
# a registry server process, skopeo, umoci and runc (Debian packages), and
# mmdebstrap, which builds the Debian 13 runtime base (Node.js, Python) the
# Node and Python end-to-end tests run their images on; make and g++ for
# node-gyp, which compiles the native-addon fixture.
# Without root (and without sudo) it says what is missing and exits 0, so the
# tests that need those tools skip with a message; under CI=true they fail.
set -euo pipefail

declare -A pkg=([jq]=jq [podman]=podman [tmux]=tmux [buildah]=buildah [docker-registry]=docker-registry [skopeo]=skopeo [umoci]=umoci [runc]=runc [git]=git [mmdebstrap]=mmdebstrap [htpasswd]=apache2-utils [make]=make [g++]=g++)
missing=()
for tool in "${!pkg[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${pkg[$tool]}")
done
# uv and pipenv make the Python fixtures' lockfiles at test time (committed
# uv.lock / Pipfile.lock files would carry the package index's address);
# spdx-tools and cyclonedx-python-lib validate the SBOMs packer writes.
# Resolved outside any project directory, as the tests do.
if command -v python3 >/dev/null 2>&1; then
  if ! (cd / && python3 -c 'import uv, pipenv, cyclonedx.validation.json, spdx_tools, jsonschema' 2>/dev/null); then
    echo "test-deps: installing uv, pipenv and the SBOM validators with pip" >&2
    (cd / && python3 -m pip install -q --disable-pip-version-check uv pipenv 'cyclonedx-python-lib[json-validation]' spdx-tools) \
      || echo "test-deps: could not install them; the tests that need them will skip" >&2
  fi
fi

# bun, for the bun fixture: the npm registry ships its binary.
if ! command -v bun >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  echo "test-deps: installing bun with npm" >&2
  (cd / && npm install -g --no-audit --no-fund bun@1 >/dev/null) || echo "test-deps: could not install bun; the bun test will skip" >&2
fi

[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo="sudo -n"
  else
    echo "test-deps: missing ${missing[*]}; install them with apt-get (needs root). Tests that need them will skip." >&2
    exit 0
  fi
fi
echo "test-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
