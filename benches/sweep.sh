#!/usr/bin/env bash
# `imgaudit sweep` (issue 9, step 4), one run on one machine: a local distribution registry
# holding 24 references (8 fixture images sharing their base layers, pushed under three
# repositories/tags each, as crates/audit-cli/tests/sweep.rs does), swept through its catalog:
#   cold: an empty disk layer store (each run starts empty);
#   warm: the store the cold run filled (the next night's sweep of an unchanged registry).
# Prints images/s (distinct manifests audited per second of wall time, listing and resolution
# included), layers analysed vs layers listed, blob bytes pulled; the median of RUNS runs.
#
# Usage: benches/sweep.sh        IMGAUDIT=path/to/imgaudit benches/sweep.sh   RUNS=5 …
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
RUNS=${RUNS:-5}
IMAGES=(clean go-rules fs-rules sec-rules musl dl-base cfg-root hist-rules)
for i in "${IMAGES[@]}"; do
  [ -f "testdata/out/images/$i/index.json" ] || { echo "sweep.sh: fixtures missing: make fixtures" >&2; exit 1; }
done
need docker-registry skopeo
imgaudit_bin
workdir sweepbench
start_registry "$W"
n=0
for k in "${!IMAGES[@]}"; do
  i=${IMAGES[$k]}
  for ref in "team$((k % 2))/$i:1" "team$((k % 2))/$i:2" "mirror/$i:1"; do
    skopeo copy -q --dest-tls-verify=false "oci:testdata/out/images/$i:latest" "docker://$HOST/$ref"
    n=$((n + 1))
  done
done
echo "registry: $n references to ${#IMAGES[@]} images, $(nproc) CPUs"
sweep() { # SUMMARY-FILE [flags…]
  local s=$1; shift
  "$BIN" sweep --insecure "$HOST" --parallel 4 --summary "$s" "$@" "$HOST" > "$W/out.jsonl" 2> /dev/null || true
}
for r in $(seq "$RUNS"); do
  rm -rf "$W/cache"
  sweep "$W/cold-$r.json" --cache-dir "$W/cache"
  sweep "$W/warm-$r.json" --cache-dir "$W/cache"
done
python3 - "$W" "$RUNS" <<'PY'
import json, statistics, sys
w, runs = sys.argv[1], int(sys.argv[2])
for kind in ("cold", "warm"):
    s = [json.load(open(f"{w}/{kind}-{r}.json")) for r in range(1, runs + 1)]
    assert all(not x["failures"] for x in s), s[0]["failures"]
    secs = statistics.median(x["seconds"] for x in s)
    x = s[0]
    print(f"{kind}: {x['audited']} images in {secs*1000:.0f} ms (median of {runs}) = {x['audited']/secs:.1f} images/s; "
          f"layers listed {x['layers_listed']}, analysed {x['layers_analysed']}, from the store {x['layers_from_store']}; "
          f"blob bytes pulled {x['bytes_pulled']}")
PY
