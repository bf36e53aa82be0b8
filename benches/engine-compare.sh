#!/usr/bin/env bash
# One run, one image in a Docker engine (issue #11's goal: auditing straight from the engine
# within 1.2x of `docker save` alone, so it is not save-then-audit in sequence):
#   docker save -o FILE bench/large:1                   (the engine's export alone)
#   imgaudit docker-daemon:bench/large:1                (export streamed into the audit)
#   imgaudit docker-archive:FILE                        (the audit of the saved archive)
# Prints mean times (hyperfine, 3 runs + 1 warm-up), ratios and peak RSS (/usr/bin/time -v).
# dockerd runs on a private socket with its own vfs data root under $TMPDIR (needs root and
# about 3x the image's size on disk).
#
# Usage: benches/engine-compare.sh [OCI-LAYOUT-DIR]   (default: testdata/out/images/large,
#        built by `make -C testdata large`)
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
IMG=${1:-testdata/out/images/large}
OUT=benches/out
RUNS=${RUNS:-3}
mkdir -p "$OUT"
[ -f "$IMG/index.json" ] || { echo "engine-compare.sh: $IMG missing; run: make -C testdata large" >&2; exit 1; }
for t in dockerd docker skopeo hyperfine /usr/bin/time; do
  command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] || { echo "engine-compare.sh: $t missing" >&2; exit 1; }
done

cargo build --release -q -p audit-cli

# Short directory: a unix socket path is limited to 108 bytes.
W=$(mktemp -d /tmp/ia-eb.XXXXXX)
cleanup() {
  if [ -n "${D_PID:-}" ]; then kill -TERM "$D_PID" 2>/dev/null; wait "$D_PID" 2>/dev/null || true; fi
  grep -o " $W/[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
/usr/sbin/dockerd --data-root "$W/data" --exec-root "$W/exec" --pidfile "$W/dockerd.pid" \
  -H "unix://$W/d.sock" --storage-driver vfs --iptables=false --ip6tables=false --bridge=none \
  --ip-masq=false >"$W/log" 2>&1 &
D_PID=$!
export DOCKER_HOST="unix://$W/d.sock" DOCKER_CONFIG="$W/client"
for _ in $(seq 200); do docker version >/dev/null 2>&1 && break; sleep 0.1; done
docker version >/dev/null
skopeo copy -q "oci:$IMG:latest" "docker-archive:$W/in.tar:bench/large:1"
docker load -q -i "$W/in.tar" >/dev/null
rm -f "$W/in.tar"
docker save -o "$W/saved.tar" bench/large:1

bytes=$(layer_bytes "$IMG")
echo "input: bench/large:1 ($IMG): $(( ${bytes% *} / 1048576 )) MiB in ${bytes#* } layer blobs, $(nproc) CPUs, $(docker version -f '{{.Server.Version}}')"

SAVE="docker save -o $W/s.tar bench/large:1"
ENGINE="target/release/imgaudit --no-cache --quiet --format json --output /dev/null docker-daemon:bench/large:1"
ARCHIVE="target/release/imgaudit --no-cache --quiet --format json --output /dev/null docker-archive:$W/saved.tar"
hyperfine -N --warmup 1 --runs "$RUNS" --prepare "rm -f $W/s.tar" --export-json "$OUT/engine-compare.json" \
  -n docker-save "$SAVE" -n imgaudit-docker-daemon "$ENGINE" -n imgaudit-docker-archive "$ARCHIVE"

rss() { rm -f "$W/s.tar"; /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '/Maximum resident set size/ {print $2}'; }
s_rss=$(rss $SAVE)
e_rss=$(rss $ENGINE)
a_rss=$(rss $ARCHIVE)
python3 - "$OUT/engine-compare.json" "$s_rss" "$e_rss" "$a_rss" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
names = ["docker-save", "imgaudit-docker-daemon", "imgaudit-docker-archive"]
rss = dict(zip(names, map(int, sys.argv[2:5])))
print(f"{'':26}{'mean s':>8}{'±':>7}{'peak RSS MiB':>14}")
for k in names:
    print(f"{k:26}{r[k]['mean']:8.3f}{r[k]['stddev'] or 0:7.3f}{rss[k] / 1024:14.1f}")
s, e, a = (r[k]["mean"] for k in names)
print(f"docker-daemon audit / docker save = {e / s:.2f}x (goal <= 1.2x)   save then audit = {(s + a) / s:.2f}x")
PY
