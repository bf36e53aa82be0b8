#!/usr/bin/env bash
# Two admission-webhook replicas sharing one Redis layer store (issue 9, step 3), one run on one
# machine (loopback only, bounded in time):
#   1. the second replica's first answer: K distinct images (the clean fixture with K config
#      labels: K manifests sharing their layers) are each admitted by replica A (which audits
#      them), then for the first time by replica B, which answers from the verdict A left in
#      Redis; p50/p99 of B's answer (curl: whole exchange incl. TLS handshake, and the server
#      part, time to first byte after the request was sent); B's metrics must show no audit;
#   2. cached verdicts at ~1,000 req/s on replica B, the one that did not audit (wrk with a
#      10 ms pause per connection between requests, 11 connections, keep-alive): p50/p99.
# Pods name their image by digest (a tag would add one HEAD to the registry per admission).
#
# Usage: benches/serve-share.sh [SECONDS for part 2, default 10]   K=50 …
#        IMGAUDIT=path/to/imgaudit benches/serve-share.sh   (default: cargo build --release)
# Needs docker-registry, redis-server, skopeo, umoci, openssl, curl, wrk.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
SECS=${1:-10}
K=${K:-50}
need docker-registry redis-server skopeo umoci openssl curl wrk
[ -f testdata/out/images/clean/index.json ] || { echo "serve-share.sh: make fixtures" >&2; exit 1; }
imgaudit_bin
workdir serveshare

start_registry "$W"
cp -a testdata/out/images/clean "$W/img"
for i in $(seq "$K"); do
  umoci config --image "$W/img:latest" --tag "v$i" --config.label "bench.variant=$i"
  skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$W/img:v$i" "docker://$HOST/bench/clean:v$i"
done
python3 - "$W/img/index.json" "$K" > "$W/digests" <<'PY'
import json, sys
tags = {m.get("annotations", {}).get("org.opencontainers.image.ref.name"): m["digest"]
        for m in json.load(open(sys.argv[1]))["manifests"]}
for i in range(1, int(sys.argv[2]) + 1):
    print(tags[f"v{i}"])
PY

RPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$W" > "$W/redis.log" 2>&1 &
REDIS_PID=$!
openssl rand -hex 32 > "$W/key"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -keyout "$W/tls.key" -out "$W/tls.crt" -subj "/CN=imgaudit-bench" \
  -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" -addext "basicConstraints=critical,CA:FALSE" \
  -addext "extendedKeyUsage=serverAuth" 2>/dev/null
echo 'fail_on = "critical"' > "$W/imgaudit.toml"
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$RPORT") 2>/dev/null && break; sleep 0.05; done
replica() { # NAME
  "$BIN" serve --listen 127.0.0.1:0 --tls-cert "$W/tls.crt" --tls-key "$W/tls.key" \
    --config "$W/imgaudit.toml" --insecure "$HOST" --deadline 25 \
    --cache "redis://127.0.0.1:$RPORT/0" --cache-key-file "$W/key" 2> "$W/$1.log" &
}
replica a; A_PID=$!
replica b; B_PID=$!
APORT=$(wait_port "$W/a.log" '"addr":"127.0.0.1:')
BPORT=$(wait_port "$W/b.log" '"addr":"127.0.0.1:')

review() { # IMAGE FILE
  cat > "$2" <<JSON
{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"b2c1f5d4-0f6e-4c57-9a3e-7d1e0c9a8b10",
"kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},
"name":"web","namespace":"default","operation":"CREATE","userInfo":{"username":"bench"},
"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"default"},
"spec":{"containers":[{"name":"web","image":"$1"}]}},"oldObject":null,"dryRun":false}}
JSON
}
post() { # PORT FILE → "total_s server_s allowed"
  curl -sS -o "$W/resp" -w '%{time_total} %{time_pretransfer} %{time_starttransfer}\n' --cacert "$W/tls.crt" \
    -H 'Content-Type: application/json' --data-binary "@$2" "https://127.0.0.1:$1/validate"
}

echo "== replica B's first answer for an image replica A audited ($K images)"
: > "$W/b-times"
i=0
while read -r d; do
  i=$((i + 1))
  review "$HOST/bench/clean@$d" "$W/r$i.json"
  post "$APORT" "$W/r$i.json" > /dev/null
  grep -q '"allowed":true' "$W/resp" || { echo "replica A did not allow image $i: $(cat "$W/resp")" >&2; exit 1; }
  post "$BPORT" "$W/r$i.json" >> "$W/b-times"
  grep -q '"allowed":true' "$W/resp" || { echo "replica B: $(cat "$W/resp")" >&2; exit 1; }
done < "$W/digests"
python3 - "$W/b-times" <<'PY'
import sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1])]
def pct(v, p):
    v = sorted(v); return v[min(len(v) - 1, round(p / 100 * (len(v) - 1)))] * 1000
tot = [r[0] for r in rows]; srv = [r[2] - r[1] for r in rows]
print(f"whole exchange (TLS handshake included): p50 {pct(tot,50):.2f} ms  p99 {pct(tot,99):.2f} ms  max {max(tot)*1000:.2f} ms")
print(f"server part (request sent -> first byte): p50 {pct(srv,50):.2f} ms  p99 {pct(srv,99):.2f} ms  max {max(srv)*1000:.2f} ms")
PY
metric() { curl -sS --cacert "$W/tls.crt" "https://127.0.0.1:$1/metrics" | grep -E "^$2 " | awk '{print $2}'; }
echo "replica A audits: $(metric "$APORT" 'imgaudit_audits_total\{result="ok"\}')," \
  "replica B audits: $(metric "$BPORT" 'imgaudit_audits_total\{result="ok"\}')," \
  "replica B verdicts taken from Redis: $(metric "$BPORT" 'imgaudit_audits_total\{result="shared"\}')"

echo
echo "== cached verdicts on replica B at ~1,000 req/s (wrk -t2 -c11 -d${SECS}s, 10 ms pause per connection)"
wrk_post "$W/r1.json" "$W/rate.lua" 10
# SNI carries host names only (RFC 6066): wrk gets localhost, not 127.0.0.1.
wrk -t2 -c11 -d"${SECS}s" --latency -s "$W/rate.lua" "https://localhost:$BPORT/validate" > "$W/wrk.txt"
wrk_line B "$W/wrk.txt"
echo "replica B audits after the load: $(metric "$BPORT" 'imgaudit_audits_total\{result="ok"\}')"
