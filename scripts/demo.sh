#!/usr/bin/env bash
# Installs kbrackup and runs a real encrypted backup and restore into a local folder repository.
# Usage: bash scripts/demo.sh [FOLDER_TO_BACK_UP]   (without a folder, a sample is generated)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/build-deps.sh
# shellcheck disable=SC2086
install_apt_packages $BUILD_APT_PACKAGES
use_node_headers
npm ci --no-audit --no-fund --loglevel=error
npm run build --silent
work=$(mktemp -d /tmp/kbrackup-demo.XXXXXX)
src=${1:-}
if [ -z "$src" ]; then
  src=$work/sample
  mkdir -p "$src/docs" "$src/photos"
  for i in $(seq 1 200); do echo "note $i: kbrackup keeps this safe" > "$src/docs/note-$i.txt"; done
  head -c 50000000 /dev/urandom > "$src/photos/big.raw"
  ln -s docs/note-1.txt "$src/latest-note"
fi
kb() { node dist/cli.js "$@"; }
echo "== keygen: the owner's key pair (the private key is only needed to restore)"
kb keygen --out "$work/keys/owner"
echo "== init: a repository in $work/repo, encrypted to the owner's public key and signed by the owner's key"
kb init --repo "$work/repo" --key "$work/keys/owner.key.asc" --credentials-out "$work/backup.cred"
echo "== backup of $src with the write-only credentials"
kb backup --repo "$work/repo" --credentials "$work/backup.cred" --log-level warn "$src"
echo "== second backup: nothing new is stored"
kb backup --repo "$work/repo" --credentials "$work/backup.cred" --log-level warn "$src"
echo "== snapshots"
kb snapshots --repo "$work/repo" --credentials "$work/backup.cred"
echo "== restore with the private key (it verifies the owner's signature, then every object)"
kb restore --repo "$work/repo" --key "$work/keys/owner.key.asc" latest --target "$work/restored" --log-level warn
diff -r "$src" "$work/restored" && echo "== restored files are identical to $src"
echo "== repository objects (all encrypted):"
find "$work/repo" -type f | sed "s#$work/repo/##" | sort | head -20
echo "everything is in $work"
