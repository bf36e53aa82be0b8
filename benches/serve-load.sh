#!/usr/bin/env bash
# Load test of the admission webhook (issue #5; not a test, loopback only, bounded in time):
#
#   1. cold audits: the first AdmissionReview for each fresh image (tag → HEAD → full audit
#      from a local distribution registry, empty caches), answered after the audit
#      (--deadline 25), timed by curl;
#   2. cached verdicts at a fixed 1,000 req/s (hey, 10 workers × 100 req/s, keep-alive):
#      p50/p99 for a digest-pinned Pod, and for a tag-only Pod (one HEAD per admission,
#      --resolve-ttl 0, the default);
#   3. the most it serves (wrk, 2 threads × 16 connections, keep-alive), same two bodies.
#
# Load generator, server and registry share this machine's cores: numbers are for all three.
#
# Measured on the 2-core development machine (2026-12-06, release build, 10 s per run):
#   cold audit, first admission   clean 69 ms · musl 59 ms (shares clean's base layers) ·
#                                 go-rules (32 MB, 11 Go binaries) 247 ms
#   1,000 req/s, cached verdict   digest-pinned p50 0.4 ms, p99 0.9 ms;
#                                 tag (HEAD each time) p50 1.6 ms, p99 3.8 ms; no error
#   most throughput (wrk)         digest-pinned 31,900 req/s (p99 1.06 ms);
#                                 tag 9,200 req/s (p99 4.6 ms)
#   server RSS afterwards         16 MiB
# Usage: benches/serve-load.sh [SECONDS per run, default 10]
#        IMGAUDIT=path/to/imgaudit benches/serve-load.sh   (default: cargo build --release)
# Needs docker-registry, skopeo, openssl, curl, wrk and hey (apt-get install wrk hey).
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
SECS=${1:-10}
need docker-registry skopeo openssl curl wrk hey
IMAGES=testdata/out/images
for i in clean musl go-rules; do
  [ -f "$IMAGES/$i/index.json" ] || { echo "serve-load.sh: $IMAGES/$i missing: make fixtures" >&2; exit 1; }
done
imgaudit_bin

workdir serveload

start_registry "$W"
for i in clean musl go-rules; do
  skopeo copy -q --dest-tls-verify=false "oci:$IMAGES/$i:latest" "docker://$HOST/bench/$i:1"
done

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -keyout "$W/tls.key" -out "$W/tls.crt" -subj "/CN=imgaudit-bench" \
  -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" -addext "basicConstraints=critical,CA:FALSE" \
  -addext "extendedKeyUsage=serverAuth" 2>/dev/null
echo 'fail_on = "critical"' > "$W/imgaudit.toml"
"$BIN" serve --listen 127.0.0.1:0 --tls-cert "$W/tls.crt" --tls-key "$W/tls.key" \
  --config "$W/imgaudit.toml" --insecure "$HOST" --deadline 25 2> "$W/serve.log" &
SRV_PID=$!
PORT=$(wait_port "$W/serve.log" '"addr":"127.0.0.1:')
URL=https://127.0.0.1:$PORT/validate
# SNI may only carry a host name (RFC 6066), and rustls enforces it: wrk would send the IP
# of a 127.0.0.1 URL, hey sends "host:port" — so wrk gets localhost, hey `-host localhost`.
LURL=https://localhost:$PORT/validate

review() { # IMAGE FILE
  cat > "$2" <<EOF
{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"b2c1f5d4-0f6e-4c57-9a3e-7d1e0c9a8b10",
"kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},
"requestKind":{"group":"","version":"v1","kind":"Pod"},"requestResource":{"group":"","version":"v1","resource":"pods"},
"name":"web-7d4b9c6f5-x2k8p","namespace":"default","operation":"CREATE",
"userInfo":{"username":"system:serviceaccount:kube-system:replicaset-controller","groups":["system:serviceaccounts"]},
"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-7d4b9c6f5-x2k8p","namespace":"default",
"labels":{"app":"web","pod-template-hash":"7d4b9c6f5"}},"spec":{"containers":[{"name":"web","image":"$1",
"ports":[{"containerPort":8080}],"resources":{"requests":{"cpu":"100m","memory":"64Mi"}}}],
"serviceAccountName":"default","restartPolicy":"Always"}},"oldObject":null,"dryRun":false,
"options":{"apiVersion":"meta.k8s.io/v1","kind":"CreateOptions"}}}
EOF
}
post() { curl -sS --cacert "$W/tls.crt" -H 'Content-Type: application/json' --data-binary "@$1" "$URL"; }

echo "== cold audits (first admission of a fresh image; resolve + pull + audit)"
printf '%-12s %10s %10s %s\n' image cold_ms warm_ms verdict
for i in clean musl go-rules; do
  review "$HOST/bench/$i:1" "$W/$i.json"
  cold=$(curl -sS -o "$W/$i.out" -w '%{time_total}' --cacert "$W/tls.crt" -H 'Content-Type: application/json' --data-binary "@$W/$i.json" "$URL")
  warm=$(curl -sS -o /dev/null -w '%{time_total}' --cacert "$W/tls.crt" -H 'Content-Type: application/json' --data-binary "@$W/$i.json" "$URL")
  verdict=$(python3 -c "import json,sys; r=json.load(open('$W/$i.out'))['response']; print('allowed' if r['allowed'] else 'denied', len(r.get('warnings', [])), 'warnings')")
  printf '%-12s %10.0f %10.1f %s\n' "$i" "$(awk "BEGIN{print $cold*1000}")" "$(awk "BEGIN{print $warm*1000}")" "$verdict"
done

DIGEST=$(python3 -c "import json; print(json.load(open('$W/clean.out'))['response']['auditAnnotations']['images'].split('@')[1])")
review "$HOST/bench/clean@$DIGEST" "$W/pinned.json"
review "$HOST/bench/clean:1" "$W/tag.json"
post "$W/pinned.json" > /dev/null

echo
echo "== cached verdicts at 1,000 req/s (hey -c 10 -q 100 -z ${SECS}s)"
for body in pinned tag; do
  SSL_CERT_FILE="$W/tls.crt" hey -z "${SECS}s" -c 10 -q 100 -host localhost -m POST -T application/json -D "$W/$body.json" "$URL" > "$W/hey-$body.txt"
  rps=$(grep 'Requests/sec' "$W/hey-$body.txt" | awk '{print $2}')
  p50=$(grep '50% in' "$W/hey-$body.txt" | awk '{print $3*1000}')
  p99=$(grep '99% in' "$W/hey-$body.txt" | awk '{print $3*1000}')
  codes=$(grep -A3 'Status code distribution' "$W/hey-$body.txt" | tail -n +2 | tr -s ' ' | tr '\n' ' ')
  printf '%-7s %8.0f req/s  p50 %6.2f ms  p99 %6.2f ms  %s\n' "$body" "$rps" "$p50" "$p99" "$codes"
done

echo
echo "== most throughput (wrk -t2 -c16 -d${SECS}s)"
for body in pinned tag; do
  wrk_post "$W/$body.json" "$W/$body.lua"
  wrk -t2 -c16 -d"${SECS}s" --latency -s "$W/$body.lua" "$LURL" > "$W/wrk-$body.txt"
  wrk_line "$body" "$W/wrk-$body.txt"
done

echo
echo "== server counters"
curl -sS --cacert "$W/tls.crt" "https://127.0.0.1:$PORT/metrics" \
  | grep -E '^imgaudit_(audits_total\{result="(ok|error)"\}|verdict_cache_(hits|misses)_total|layer_cache_(hits|misses)|resolve_cache_misses_total|registry_errors_total\{kind="(unreachable|timeout)"\}) ' || true
ps -o rss= -p "$SRV_PID" | awk '{printf "server RSS: %.1f MiB\n", $1/1024}'
