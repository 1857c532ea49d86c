#!/usr/bin/env bash
# kbrackup against Debian's restic on the same data, same machine, one right after the other:
#  1. first backup of one pseudo-random file (default 2 GiB): MB/s and peak RSS of each;
#  2. re-run with nothing changed over 20,000 small files + that file (restic with its local cache).
# Usage: bash bench/vs-restic.sh [WORKDIR]   (SIZE_MIB=2048 FILES=20000; needs `apt-get install restic`)
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-/tmp/kbrackup-vs-restic}
SIZE_MIB=${SIZE_MIB:-2048}
FILES=${FILES:-20000}
command -v restic >/dev/null || { echo "restic is not installed: apt-get install restic" >&2; exit 1; }
npm run build --silent
rm -rf "$W" && mkdir -p "$W/big" "$W/all/small"
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom > "$W/big/data.bin"
ln "$W/big/data.bin" "$W/all/data.bin"
for d in $(seq 0 $((FILES / 1000 - 1))); do
  mkdir -p "$W/all/small/d$d"
  for f in $(seq 0 999); do echo "file $d/$f" > "$W/all/small/d$d/f$f"; done
done
drop() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
measure() { # label, command...: prints seconds and peak RSS
  local label=$1; shift
  drop
  /usr/bin/time -f "%e %M" -o "$W/time" "$@" >/dev/null 2>"$W/stderr" || { cat "$W/stderr" >&2; exit 1; }
  read -r secs kib < "$W/time"
  printf '%-44s %8.2f s  %7.1f MB/s  peak RSS %6.1f MiB\n' "$label" "$secs" "$(echo "$SIZE_MIB * 1.048576 / $secs" | bc -l)" "$(echo "$kib / 1024" | bc -l)"
}
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR="$W/restic-cache"
restic init -r "$W/restic" >/dev/null
node dist/cli.js keygen --out "$W/keys/owner" >/dev/null
node dist/cli.js init --repo "$W/kb" --recipient "$W/keys/owner.pub.asc" --credentials-out "$W/kb.cred" >/dev/null
node dist/cli.js init --repo "$W/kb-pod" --recipient "$W/keys/owner.pub.asc" --credentials-out "$W/kb-pod.cred" >/dev/null
echo "== first backup of ${SIZE_MIB} MiB of random data"
measure "restic 0.14 backup" restic -r "$W/restic" backup "$W/big"
measure "kbrackup backup" node dist/cli.js backup --repo "$W/kb" --credentials "$W/kb.cred" --log-level warn "$W/big"
measure "kbrackup backup, heap flags of the image" node --max-old-space-size=24 --max-semi-space-size=1 dist/cli.js backup --repo "$W/kb-pod" --credentials "$W/kb-pod.cred" --log-level warn "$W/big"
echo "== re-run with nothing changed: $FILES small files + the ${SIZE_MIB} MiB file"
restic -r "$W/restic" backup "$W/all" >/dev/null
node dist/cli.js backup --repo "$W/kb" --credentials "$W/kb.cred" --log-level warn "$W/all" >/dev/null
measure "restic 0.14 re-run (local cache)" restic -r "$W/restic" backup "$W/all"
measure "kbrackup re-run (stateless)" node dist/cli.js backup --repo "$W/kb" --credentials "$W/kb.cred" --log-level warn "$W/all"
echo "(MB/s on the re-run lines is nominal: nothing is read)"
