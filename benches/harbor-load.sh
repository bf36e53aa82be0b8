#!/usr/bin/env bash
# Load test of the Harbor scanner adapter and the Gatekeeper provider (issue #10; not a test,
# loopback only, bounded in time). A local distribution registry holds every fixture image;
# `imgaudit serve --harbor-listen` scans them as Harbor's job service would (POST /scan, poll
# the report through 302s):
#
#   1. cold: empty stores, every image scanned once, all submitted at once;
#   2. warm result store: the same scans again on the same replica (answered by digest);
#   3. warm layer store: a fresh replica on the same --cache-dir (no result kept, layer
#      analyses reused: what a restarted or new replica pays);
#   4. report latency: GET of finished reports (vulnerability 1.1 and SBOM), 4 clients;
#   5. the Gatekeeper provider: 100-key ProviderRequests over the fixture images (verdicts
#      cached), one client.
#
# Measured on the 2-core development machine (2026-12-07, release build, other agents' builds
# running; 27 fixture images, 24 scannable — the multi-platform and converted ones fail with
# "manifest unknown" as skopeo copy does not keep their layout digest):
#   1. cold                     27 scans in 3.22 s = 504 scans/min
#   2. warm result store        27 scans in 0.08 s = 19,086 scans/min
#   3. warm layer store         27 scans in 0.82 s = 1,969 scans/min (fresh replica)
#   4. report GET, 4 clients    vulnerability p50 0.58 ms, p99 3.83 ms; SBOM p50 0.57 ms,
#                               p99 4.07 ms (1,000 GETs each)
#   5. provider, 100 tag keys   p50 41.8 ms, p99 244 ms (500 requests; verdicts cached, each
#                               request HEADs its 27 distinct tags: --resolve-ttl 0)
#   server RSS afterwards       48 MiB
# Usage: benches/harbor-load.sh [REPORT REQUESTS, default 2000]
#        IMGAUDIT=path/to/imgaudit benches/harbor-load.sh   (default: cargo build --release)
# Needs docker-registry, skopeo, openssl, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
N=${1:-2000}
need docker-registry skopeo openssl python3
imgaudit_bin
workdir harborload

start_registry "$W"
IMAGES=()
for d in testdata/out/images/*/; do
  i=$(basename "$d")
  case $i in large*) continue ;; esac
  [ -f "$d/index.json" ] || continue
  skopeo copy -q --dest-tls-verify=false "oci:$d:latest" "docker://$HOST/bench/$i:1" 2>/dev/null || continue
  IMAGES+=("$i")
done
echo "${#IMAGES[@]} fixture images in the registry"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -keyout "$W/tls.key" -out "$W/tls.crt" -subj "/CN=imgaudit-bench" \
  -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" -addext "basicConstraints=critical,CA:FALSE" 2>/dev/null
printf '[admission]\ndeny_on = "high"\n' > "$W/imgaudit.toml"

start_server() { # LOG
  "$BIN" serve --listen 127.0.0.1:0 --tls-cert "$W/tls.crt" --tls-key "$W/tls.key" \
    --config "$W/imgaudit.toml" --insecure "$HOST" --cache-dir "$W/layers" \
    --harbor-listen 127.0.0.1:0 --harbor-plain-http --harbor-max-queue 256 \
    --provider-deadline 25 2> "$1" &
  SRV_PID=$!
  HPORT=$(wait_port "$1" '"addr":"127.0.0.1:')
  for _ in $(seq 100); do grep -q '"message":"listening"' "$1" && break; sleep 0.05; done
  WPORT=$(grep '"message":"listening"' "$1" | grep -o '"addr":"127.0.0.1:[0-9]*' | grep -o '[0-9]*$')
  # The harbor listener logs first.
  HPORT=$(grep '"message":"harbor adapter listening"' "$1" | grep -o '"addr":"127.0.0.1:[0-9]*' | grep -o '[0-9]*$')
}

cat > "$W/drive.py" <<'PY'
import json, ssl, sys, threading, time, urllib.request, urllib.error
mode, base, host = sys.argv[1], sys.argv[2], sys.argv[3]
images = sys.argv[4].split()
digests = {}
for i in images:
    idx = json.load(open(f"testdata/out/images/{i}/index.json"))
    digests[i] = idx["manifests"][0]["digest"]
VULN = "application/vnd.security.vulnerability.report; version=1.1"
SBOM = "application/vnd.security.sbom.report+json; version=1.0"

class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k): return None
opener = urllib.request.build_opener(NoRedirect)

def call(method, url, body=None, accept=None, ctx=None):
    req = urllib.request.Request(url, data=body, method=method)
    if body is not None: req.add_header("Content-Type", "application/json")
    if accept: req.add_header("Accept", accept)
    try:
        with (urllib.request.urlopen(req, context=ctx) if ctx else opener.open(req)) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()

def pct(xs, p):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]

if mode == "scan":
    t0 = time.monotonic(); ids = []
    for i in images:
        body = json.dumps({"registry": {"url": f"http://{host}"}, "artifact": {"repository": f"bench/{i}", "digest": digests[i]}}).encode()
        code, b = call("POST", base + "/api/v1/scan", body)
        assert code == 202, (code, b)
        ids.append(json.loads(b)["id"])
    pending = set(ids); failed = []; done = []
    while pending:
        for j in list(pending):
            code, b = call("GET", f"{base}/api/v1/scan/{j}/report", accept=VULN)
            if code == 302: continue
            pending.discard(j)
            if code == 200: done.append(j)
            else: failed.append(json.loads(b)["error"]["message"][:100])
        time.sleep(0.02)
    dt = time.monotonic() - t0
    print(f"{len(ids)} scans in {dt:.2f} s = {len(ids) / dt * 60:.0f} scans/min ({len(failed)} failed: index or converted fixtures whose layout digest the registry copy does not keep)")
    for f in failed: print("   failed:", f)
    json.dump(done, open(sys.argv[5], "w"))
elif mode == "report":
    ids = json.load(open(sys.argv[5])); n = int(sys.argv[6])
    for accept, q in [(VULN, ""), (SBOM, "?sbom_media_type=application/vnd.cyclonedx%2Bjson")]:
        lat = []; lock = threading.Lock()
        def worker(k):
            for x in range(k, n, 4):
                t = time.monotonic()
                code, _ = call("GET", f"{base}/api/v1/scan/{ids[x % len(ids)]}/report{q}", accept=accept)
                d = time.monotonic() - t
                assert code == 200, code
                with lock: lat.append(d)
        ts = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        [t.start() for t in ts]; [t.join() for t in ts]
        print(f"report {accept.split(';')[0].split('.')[-1]:<26} {n} GETs, 4 clients: p50 {pct(lat, 50) * 1000:.2f} ms, p99 {pct(lat, 99) * 1000:.2f} ms")
elif mode == "provider":
    ctx = ssl.create_default_context(cafile=sys.argv[5]); ctx.check_hostname = False
    n = int(sys.argv[6])
    keys = [f"{host}/bench/{images[k % len(images)]}:1" for k in range(100)]
    body = json.dumps({"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderRequest", "request": {"keys": keys}}).encode()
    t = time.monotonic(); code, b = call("POST", base + "/gatekeeper/images", body, ctx=ctx)
    first = time.monotonic() - t
    assert code == 200, (code, b)
    verdicts = {}
    for it in json.loads(b)["response"]["items"]:
        v = (it["value"] or {}).get("verdict", "error"); verdicts[v] = verdicts.get(v, 0) + 1
    lat = []
    for _ in range(n):
        t = time.monotonic(); code, _ = call("POST", base + "/gatekeeper/images", body, ctx=ctx)
        assert code == 200
        lat.append(time.monotonic() - t)
    print(f"provider 100 keys ({len(set(keys))} distinct images): first (tags resolved, verdicts cached by the scans) {first * 1000:.0f} ms; then {n} requests: p50 {pct(lat, 50) * 1000:.2f} ms, p99 {pct(lat, 99) * 1000:.2f} ms; verdicts {verdicts}")
PY

start_server "$W/serve1.log"
H=http://127.0.0.1:$HPORT
echo "== 1. cold (empty stores)"
python3 "$W/drive.py" scan "$H" "$HOST" "${IMAGES[*]}" "$W/ids.json"
echo "== 2. warm result store (same replica, same images)"
python3 "$W/drive.py" scan "$H" "$HOST" "${IMAGES[*]}" "$W/ids2.json"
echo "== 4. report latency"
python3 "$W/drive.py" report "$H" "$HOST" "${IMAGES[*]}" "$W/ids.json" "$N"
echo "== 5. Gatekeeper provider"
python3 "$W/drive.py" provider "https://127.0.0.1:$WPORT" "$HOST" "${IMAGES[*]}" "$W/tls.crt" 500
ps -o rss= -p "$SRV_PID" | awk '{printf "server RSS: %.1f MiB\n", $1/1024}'
kill "$SRV_PID"; wait "$SRV_PID" 2>/dev/null || true
start_server "$W/serve2.log"
echo "== 3. warm layer store (fresh replica, same --cache-dir)"
python3 "$W/drive.py" scan "http://127.0.0.1:$HPORT" "$HOST" "${IMAGES[*]}" "$W/ids3.json"
