#!/usr/bin/env bash
# Builds the webhook image offline and checks it with imgaudit itself (CI runs this).
#
#   1. imgaudit, statically linked (glibc, +crt-static), in target/static/;
#   2. a distroless-static base assembled by testdata's image builder (the fixtures' base
#      layers: base-files, netbase, tzdata, passwd/group/home/tmp, nsswitch.conf, os-release,
#      the CA bundle; non-root config) as an OCI layout, because gcr.io is out of reach here;
#   3. deploy/Dockerfile's `prebuilt` path with buildah (FROM oci:<base>), pushed to an OCI
#      layout: target/image/imgaudit (tag latest);
#   4. `imgaudit --profile static --fail-on medium` on it: any finding above low fails.
#
# Needs root for buildah (vfs storage under target/image/). Usage: deploy/build-image.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/target/image
TRIPLE=x86_64-unknown-linux-gnu
for t in buildah python3 cargo; do command -v "$t" >/dev/null || { echo "build-image.sh: $t is not installed" >&2; exit 1; }; done

echo "build-image.sh: static imgaudit (release)" >&2
RUSTFLAGS="-C target-feature=+crt-static" CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=debuginfo \
  cargo build -q --release --locked -p audit-cli --target "$TRIPLE" --target-dir target/static
BIN=target/static/$TRIPLE/release/imgaudit
if readelf -lW "$BIN" | grep -q 'Requesting program interpreter'; then
  echo "build-image.sh: $BIN is not static" >&2; exit 1
fi

rm -rf "$OUT" && mkdir -p "$OUT/ctx/out"
echo "build-image.sh: distroless-static base" >&2
python3 - "$OUT/base" <<'PY'
import sys
sys.path.insert(0, "testdata")
from images import Base, nonroot_config, meta_steps
from mkimage import Image, write_layout
cfg = nonroot_config(entrypoint=None, labels=None)
img = Image(config=cfg)
Base().steps(img)
meta_steps(img, cfg)
write_layout(sys.argv[1], {"latest": img})
PY

echo "build-image.sh: buildah bud -f deploy/Dockerfile (prebuilt binary)" >&2
cp "$BIN" "$OUT/ctx/out/imgaudit"
S=(--root "$OUT/storage" --runroot "$OUT/run" --storage-driver vfs)
buildah "${S[@]}" bud -q --isolation chroot --timestamp 0 -f deploy/Dockerfile \
  --build-arg BASE="oci:$OUT/base:latest" --build-arg BIN_STAGE=prebuilt \
  --build-arg VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)" \
  --build-arg REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
  -t localhost/imgaudit:ci "$OUT/ctx" >/dev/null
buildah "${S[@]}" push -q localhost/imgaudit:ci "oci:$OUT/imgaudit:latest"
buildah "${S[@]}" rmi -a -f >/dev/null 2>&1 || true
rm -rf "$OUT/storage" "$OUT/run" "$OUT/ctx"

echo "build-image.sh: imgaudit --profile static --fail-on medium oci:$OUT/imgaudit:latest" >&2
"$BIN" --profile static --fail-on medium "oci:$OUT/imgaudit:latest"
echo "build-image.sh: the image passes the static profile with no finding above low" >&2
