#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine (as root) and runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# openssl: certificates for the fake API server; golang + sprig + sigs.k8s.io/yaml: the Helm chart renderer;
# podman, runc, mmdebstrap: the container image test (a local Debian + Node 24 base, no registry needed).
APT_PACKAGES="openssh-server openssl golang-go golang-github-masterminds-sprig-dev golang-k8s-sigs-yaml-dev podman runc mmdebstrap"
missing=""
for p in $APT_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
npm ci --no-audit --no-fund
npm test
