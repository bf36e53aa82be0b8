#!/usr/bin/env bash
# Fuzzes the Harbor adapter's HTTP API from the committed OpenAPI document with schemathesis
# (PyPI): `imgaudit serve --harbor-listen` on a loopback port, a bounded number of generated
# requests per operation (positive and negative), and two checks: no 5xx answer and no crash
# (the server must still answer /healthz afterwards). No registry: accepted scans fail to pull,
# which is the scan's own error, reported through its job.
#   usage: testdata/harbor/schemathesis.sh IMGAUDIT [SCHEMATHESIS] [MAX_EXAMPLES]
set -euo pipefail
IMGAUDIT=${1:?usage: schemathesis.sh IMGAUDIT [SCHEMATHESIS] [MAX_EXAMPLES]}
ST=${2:-schemathesis}
MAX=${3:-100}
HERE=$(cd "$(dirname "$0")" && pwd)
command -v "$ST" >/dev/null || { echo "schemathesis.sh: $ST is not installed (see .ci/run)" >&2; exit 1; }
W=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -keyout "$W/key.pem" -out "$W/cert.pem" -subj /CN=localhost \
  -addext subjectAltName=IP:127.0.0.1 -addext basicConstraints=critical,CA:FALSE 2>/dev/null
echo "harbor:fuzz-pass" > "$W/auth"
# Created here: the background job opens it after the fork, possibly after the first read below.
: > "$W/log"
HOME=$W "$IMGAUDIT" serve --listen 127.0.0.1:0 --tls-cert "$W/cert.pem" --tls-key "$W/key.pem" \
  --harbor-listen 127.0.0.1:0 --harbor-plain-http --harbor-auth basic --harbor-auth-file "$W/auth" \
  --harbor-max-queue 16 --timeout 5 2>"$W/log" &
PID=$!
PORT=
for _ in $(seq 100); do
  PORT=$(sed -n 's/.*"message":"harbor adapter listening".*"addr":"127.0.0.1:\([0-9]*\)".*/\1/p; s/.*"addr":"127.0.0.1:\([0-9]*\)".*"message":"harbor adapter listening".*/\1/p' "$W/log" | head -1)
  [ -n "$PORT" ] && break
  sleep 0.1
done
[ -n "$PORT" ] || { echo "schemathesis.sh: imgaudit did not start" >&2; cat "$W/log" >&2; exit 1; }
# From the temporary directory: schemathesis keeps a cache in the working directory.
(cd "$W" && "$ST" run "$HERE/scanner-adapter-openapi-v1.2.yaml" --url "http://127.0.0.1:$PORT/api/v1" \
  --auth harbor:fuzz-pass --checks not_a_server_error --max-examples "$MAX" --seed 10 \
  --workers 2 --no-color --generation-database none \
  --phases examples,coverage,fuzzing --request-timeout 10)
python3 -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)" "http://127.0.0.1:$PORT/healthz" || { echo "schemathesis.sh: the adapter stopped answering" >&2; exit 1; }
kill -0 "$PID" || { echo "schemathesis.sh: imgaudit died" >&2; cat "$W/log" >&2; exit 1; }
echo "schemathesis.sh: no 5xx, adapter still up"
