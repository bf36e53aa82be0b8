#!/usr/bin/env bash
# One run, one input: imgaudit's full audit next to the CPU floor of the layer pass (blob
# sha256 + decompression + tar sha256 + tar walk, same crates and parallelism, no
# inspection: target/release/floor) and trivy's SBOM mode (the closest peer pass: it reads
# every layer and parses Go binaries). Prints mean times, ratios and peak RSS.
#
# Usage: benches/compare.sh [OCI-LAYOUT-DIR]   (default: testdata/out/images/large,
#        built by `make -C testdata large`: ~1 GB uncompressed of Go binaries in gzip layers)
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
IMG=${1:-testdata/out/images/large}
OUT=benches/out
mkdir -p "$OUT"
[ -f "$IMG/index.json" ] || { echo "compare.sh: $IMG missing; run: make -C testdata large" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "compare.sh: hyperfine missing (apt-get install hyperfine)" >&2; exit 1; }

cargo build --release -q -p audit-cli -p imgaudit-benches

fetch_trivy "$OUT"

bytes=$(layer_bytes "$IMG")
echo "input: $IMG, $(( ${bytes% *} / 1048576 )) MiB of layer blobs, $(nproc) CPUs"

FLOOR="target/release/floor $IMG"
AUDIT="target/release/imgaudit --no-cache --format json --output /dev/null $IMG"
PEER="$TRIVY image --quiet --cache-backend memory --input $IMG --format cyclonedx --output /dev/null"
hyperfine -N --warmup 1 --runs 5 --export-json "$OUT/compare.json" -n floor "$FLOOR" -n imgaudit "$AUDIT" -n trivy-sbom "$PEER"

rss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }
floor_rss=$(rss $FLOOR)
audit_rss=$(rss $AUDIT)
peer_rss=$(rss $PEER)
python3 - "$OUT/compare.json" "$floor_rss" "$audit_rss" "$peer_rss" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
f, a, t = r["floor"]["mean"], r["imgaudit"]["mean"], r["trivy-sbom"]["mean"]
rss = dict(zip(["floor", "imgaudit", "trivy-sbom"], map(int, sys.argv[2:5])))
print(f"{'':12}{'mean s':>8}{'±':>7}{'peak RSS MiB':>14}")
for k in ["floor", "imgaudit", "trivy-sbom"]:
    print(f"{k:12}{r[k]['mean']:8.3f}{r[k]['stddev'] or 0:7.3f}{rss[k] / 1024:14.1f}")
print(f"imgaudit / floor = {a / f:.2f}x   trivy / imgaudit = {t / a:.2f}x")
PY
