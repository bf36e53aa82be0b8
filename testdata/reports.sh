#!/usr/bin/env bash
# JSON reports of every fixture image and archive, one file each, for before/after comparisons
# of changes that must not change what imgaudit reports (refactors, dependency upgrades):
#   ./reports.sh IMGAUDIT OUTDIR      then      diff -r OUTDIR-before OUTDIR-after
# Each image is audited twice: as is, and with `--profile auto --all-platforms` (DL rules, every
# platform). Exit codes are recorded next to the reports (an error is a result too).
set -uo pipefail
[ $# -eq 2 ] || { echo "usage: $0 IMGAUDIT OUTDIR" >&2; exit 2; }
bin=$(realpath "$1"); mkdir -p "$2"; out=$(realpath "$2")
cd "$(dirname "$0")"
[ -d out/images ] || { echo "$0: run 'make fixtures' first" >&2; exit 2; }
for p in out/images/*/ out/archives/*.tar demo/; do
  p=${p%/}; name=$(basename "$p")
  for mode in plain full; do
    args=(); [ $mode = full ] && args=(--profile auto --all-platforms)
    "$bin" --quiet --format json "${args[@]}" -o "$out/$name.$mode.json" "$p" 2>"$out/$name.$mode.err"
    echo "$?" >"$out/$name.$mode.rc"
  done
done
echo "$(ls "$out"/*.json | wc -l) reports in $out"
