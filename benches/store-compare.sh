#!/usr/bin/env bash
# The layer store (issue 9), one run on one machine:
#   1. the image from its OCI layout: a cold audit (empty disk store) and a warm one (every layer
#      in the store); goal: warm <= 50 ms and <= 5 % of cold;
#   2. the same image from a local distribution registry: a warm audit's wall time and the bytes
#      and requests the registry served it (from the registry's "response completed" log lines);
#      goal: manifest + config only, no blob.
# Prints means (hyperfine) and the registry's counts.
#
# Usage: benches/store-compare.sh [OCI-LAYOUT-DIR]   (default: testdata/out/images/large,
#        built by `make -C testdata large`)
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
IMG=${1:-testdata/out/images/large}
OUT=benches/out
RUNS=${RUNS:-5}
mkdir -p "$OUT"
[ -f "$IMG/index.json" ] || { echo "store-compare.sh: $IMG missing; run: make -C testdata large" >&2; exit 1; }
need docker-registry skopeo hyperfine
cargo build --release -q -p audit-cli
workdir storebench
bytes=$(layer_bytes "$IMG")
echo "input: $IMG: $(( ${bytes% *} / 1048576 )) MiB in ${bytes#* } layer blobs, $(nproc) CPUs"

BIN=target/release/imgaudit
LOCAL="$BIN --cache-dir $W/c1 --quiet --format json --output /dev/null $IMG"
hyperfine -N --runs "$RUNS" --prepare "rm -rf $W/c1" --export-json "$OUT/store-cold.json" -n cold "$LOCAL"
hyperfine -N --warmup 1 --runs $((RUNS * 4)) --export-json "$OUT/store-warm.json" -n warm "$LOCAL"
$BIN cache info --cache-dir "$W/c1"

start_registry "$W"
REF=$HOST/bench/large:1
skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$IMG:latest" "docker://$REF"
REMOTE="$BIN --cache-dir $W/c2 --quiet --format json --output /dev/null --insecure $HOST $REF"
served() { # bytes and requests the registry answered since line $1 of its log, and blob GETs
  tail -n +"$1" "$W/registry.log" | python3 -c '
import re, sys
b = n = blobs = 0
for l in sys.stdin:
    if "response completed" not in l: continue
    n += 1
    m = re.search(r"http.response.written=(\d+)", l); b += int(m.group(1)) if m else 0
    if re.search(r"http.request.method=GET .*http.request.uri=\"?/v2/\S*/blobs/", l): blobs += 1
print(b, n, blobs)'
}
mark=$(( $(wc -l < "$W/registry.log") + 1 )); $REMOTE; read -r cb cn cblobs <<<"$(served "$mark")"
mark=$(( $(wc -l < "$W/registry.log") + 1 )); $REMOTE; read -r wb wn wblobs <<<"$(served "$mark")"
hyperfine -N --warmup 1 --runs $((RUNS * 4)) --export-json "$OUT/store-registry-warm.json" -n registry-warm "$REMOTE"
python3 - "$OUT" "$cb" "$cn" "$cblobs" "$wb" "$wn" "$wblobs" <<'PY'
import json, sys
out = sys.argv[1]
mean = lambda f: json.load(open(f"{out}/{f}"))["results"][0]
c, w, r = mean("store-cold.json"), mean("store-warm.json"), mean("store-registry-warm.json")
print(f"layout  cold {c['mean']*1000:8.1f} ms ± {c['stddev']*1000:.1f}")
print(f"layout  warm {w['mean']*1000:8.1f} ms ± {w['stddev']*1000:.1f}   warm/cold = {w['mean']/c['mean']*100:.2f} %")
print(f"registry warm {r['mean']*1000:7.1f} ms ± {r['stddev']*1000:.1f}")
cb, cn, cblobs, wb, wn, wblobs = map(int, sys.argv[2:8])
print(f"registry served: cold {cb} bytes in {cn} requests ({cblobs} blob GETs, the config among them); warm {wb} bytes in {wn} requests ({wblobs} blob GETs)")
PY
