#!/usr/bin/env bash
# StrykerJS over the security- and integrity-critical modules, one group at a time (stryker.config.mjs).
# Usage: scripts/mutation.sh [GROUP]...   (no GROUP: every group). Reports in reports/mutation/.
# Not part of `npm test`: all groups take hours on two shared cores.
set -euo pipefail
cd "$(dirname "$0")/.."
groups=("$@")
[ ${#groups[@]} -gt 0 ] || groups=(restore metadata content trust crypto)
for g in "${groups[@]}"; do
  MUTATION_GROUP="$g" npx stryker run stryker.config.mjs
  node scripts/mutation-survivors.mjs "reports/mutation/$g.json"
done
