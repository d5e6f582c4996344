#!/usr/bin/env bash
# The daemonless image toolchain, from Debian: buildah (builds the Dockerfiles), umoci (unpacks an
# OCI image into a runtime bundle), runc (runs it: tests/simcluster's container mode) and
# mmdebstrap (makes the offline Debian bookworm base). Installs only what is missing; needs root.
set -euo pipefail
missing=()
for tool in buildah umoci runc mmdebstrap; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if (( ${#missing[@]} )); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "missing ${missing[*]} and not root: install Debian's buildah umoci runc mmdebstrap packages" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    buildah umoci runc mmdebstrap uidmap >/dev/null
fi
