#!/usr/bin/env bash
# A refactor must not move the numbers: the full audit at HEAD next to the same audit at an
# earlier commit BASE and the floor (target/release/floor at HEAD), same run, same inputs.
# BASE is built in a temporary worktree with its own target directory (BASE_TARGET, default
# /tmp/imgaudit-base-target, kept between runs). Prints hyperfine's means and peak RSS.
#
# Usage: benches/compare-commits.sh BASE [OCI-LAYOUT-DIR...]
#        (default inputs: testdata/out/images/large and large-zstd, `make -C testdata large`)
# Example (issue #13: before the structural work): benches/compare-commits.sh 2761cff
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
need hyperfine git
[ $# -ge 1 ] || { echo "usage: $0 BASE [OCI-LAYOUT-DIR...]" >&2; exit 2; }
BASE=$(git rev-parse --short "$1"); shift
IMGS=("$@"); [ ${#IMGS[@]} -gt 0 ] || IMGS=(testdata/out/images/large testdata/out/images/large-zstd)
for i in "${IMGS[@]}"; do
  [ -f "$i/index.json" ] || { echo "$0: $i missing; run: make -C testdata large" >&2; exit 1; }
done
OUT=benches/out; mkdir -p "$OUT"
cargo build --release -q -p audit-cli -p imgaudit-benches
HEAD_=$(git rev-parse --short HEAD)
BT=${BASE_TARGET:-/tmp/imgaudit-base-target}
workdir compare-commits
git worktree add -q --detach "$W/src" "$BASE"
trap 'git worktree remove --force "$W/src"; cleanup_workdir' EXIT
(cd "$W/src" && CARGO_TARGET_DIR="$BT" cargo build --release -q -p audit-cli)
cp "$BT/release/imgaudit" "$W/imgaudit-$BASE"
# The store (`--no-cache`) exists only in later commits; without a store nothing is cached.
nc() { "$1" --help | grep -q -- --no-cache && echo --no-cache || true; }
NOW="target/release/imgaudit $(nc target/release/imgaudit)"
THEN="$W/imgaudit-$BASE $(nc "$W/imgaudit-$BASE")"
for IMG in "${IMGS[@]}"; do
  n=$(basename "$IMG")
  echo "== $IMG ($(nproc) CPUs)"
  hyperfine -N --warmup 1 --runs "${RUNS:-5}" --export-json "$OUT/compare-commits-$n.json" \
    -n floor "target/release/floor $IMG" \
    -n "imgaudit-$HEAD_" "$NOW --format json --output /dev/null $IMG" \
    -n "imgaudit-$BASE" "$THEN --format json --output /dev/null $IMG"
  for b in "$NOW" "$THEN"; do
    # shellcheck disable=SC2086 # a word list
    echo "peak RSS KiB, ${b%% *}: $(/usr/bin/time -f %M $b --format json --output /dev/null "$IMG" 2>&1 >/dev/null | tail -1)"
  done
done
