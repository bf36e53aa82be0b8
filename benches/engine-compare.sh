#!/usr/bin/env bash
# One run, one image in a Docker engine and in containerd (issue #11's goals: auditing straight
# from Docker within 1.2x of `docker save` alone, so it is not save-then-audit in sequence; from
# containerd within 1.1x of auditing the same image's OCI layout):
#   docker save -o FILE bench/large:1                   (the engine's export alone)
#   imgaudit docker-daemon:bench/large:1                (export streamed into the audit)
#   imgaudit docker-archive:FILE                        (the audit of the saved archive)
#   imgaudit containerd:bench/large:latest              (blobs from containerd's content store)
#   imgaudit oci:LAYOUT                                 (the layout that was imported)
# Prints mean times (hyperfine, RUNS runs + 1 warm-up), ratios and peak RSS (/usr/bin/time -v).
# dockerd (storage driver $DOCKER_STORAGE, default overlay2) and containerd run on private
# sockets with their own roots under /tmp (needs root and about 4x the image's size on disk).
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
for t in dockerd docker containerd ctr skopeo hyperfine /usr/bin/time; do
  command -v "$t" >/dev/null || [ -x "/usr/sbin/$t" ] || { echo "engine-compare.sh: $t missing" >&2; exit 1; }
done

cargo build --release -q -p audit-cli

# Short directory: a unix socket path is limited to 108 bytes.
W=$(mktemp -d /tmp/ia-eb.XXXXXX)
cleanup() {
  for p in ${D_PID:-} ${C_PID:-}; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null || true; done
  grep -o " $W/[^ ]*" /proc/self/mounts | sort -r | xargs -r -n1 umount 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
/usr/sbin/dockerd --data-root "$W/data" --exec-root "$W/exec" --pidfile "$W/dockerd.pid" \
  -H "unix://$W/d.sock" --storage-driver "${DOCKER_STORAGE:-overlay2}" --iptables=false \
  --ip6tables=false --bridge=none --ip-masq=false >"$W/log" 2>&1 &
D_PID=$!
cat > "$W/containerd.toml" <<CFG
version = 2
root = "$W/c-root"
state = "$W/c-state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$W/c.sock"
[ttrpc]
  address = "$W/c.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
CFG
containerd --config "$W/containerd.toml" >"$W/c.log" 2>&1 &
C_PID=$!
export DOCKER_HOST="unix://$W/d.sock" DOCKER_CONFIG="$W/client"
export CONTAINERD_ADDRESS="$W/c.sock" CONTAINERD_NAMESPACE=bench
for _ in $(seq 200); do docker version >/dev/null 2>&1 && ctr version >/dev/null 2>&1 && break; sleep 0.1; done
docker version >/dev/null
ctr version >/dev/null
skopeo copy -q "oci:$IMG:latest" "docker-archive:$W/in.tar:bench/large:1"
docker load -q -i "$W/in.tar" >/dev/null
rm -f "$W/in.tar"
docker save -o "$W/saved.tar" bench/large:1
# The layout as it is (gzip layers, same digests), not unpacked: no snapshot is made.
tar -C "$IMG" -cf - . | ctr images import --no-unpack --base-name bench/large - >/dev/null

bytes=$(layer_bytes "$IMG")
echo "input: bench/large ($IMG): $(( ${bytes% *} / 1048576 )) MiB in ${bytes#* } layer blobs, $(nproc) CPUs, docker $(docker version -f '{{.Server.Version}}') (${DOCKER_STORAGE:-overlay2}), containerd $(ctr version | awk '/Version/ {print $2}' | tail -1)"

SAVE="docker save -o $W/s.tar bench/large:1"
I="target/release/imgaudit --no-cache --quiet --format json --output /dev/null"
ENGINE="$I docker-daemon:bench/large:1"
ARCHIVE="$I docker-archive:$W/saved.tar"
CTRD="$I containerd:bench/large:latest"
LAYOUT="$I oci:$IMG"
hyperfine -N --warmup 1 --runs "$RUNS" --prepare "rm -f $W/s.tar" --export-json "$OUT/engine-compare.json" \
  -n docker-save "$SAVE" -n imgaudit-docker-daemon "$ENGINE" -n imgaudit-docker-archive "$ARCHIVE" \
  -n imgaudit-containerd "$CTRD" -n imgaudit-oci-layout "$LAYOUT"

rss() { rm -f "$W/s.tar"; /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '/Maximum resident set size/ {print $2}'; }
rsses=()
for c in "$SAVE" "$ENGINE" "$ARCHIVE" "$CTRD" "$LAYOUT"; do
  # shellcheck disable=SC2086 # the commands are word lists
  rsses+=("$(rss $c)")
done
python3 - "$OUT/engine-compare.json" "${rsses[@]}" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
names = ["docker-save", "imgaudit-docker-daemon", "imgaudit-docker-archive",
         "imgaudit-containerd", "imgaudit-oci-layout"]
rss = dict(zip(names, map(int, sys.argv[2:])))
print(f"{'':26}{'mean s':>8}{'±':>7}{'peak RSS MiB':>14}")
for k in names:
    print(f"{k:26}{r[k]['mean']:8.3f}{r[k]['stddev'] or 0:7.3f}{rss[k] / 1024:14.1f}")
s, e, a, c, o = (r[k]["mean"] for k in names)
print(f"docker-daemon audit / docker save = {e / s:.2f}x (goal <= 1.2x)   save then audit = {(s + a) / s:.2f}x")
print(f"containerd audit / oci layout audit = {c / o:.2f}x (goal <= 1.1x)")
PY
