#!/usr/bin/env python3
"""Check the built fixtures with independent means (make verify).

1. Every OCI layout (out/images/*, demo/): every descriptor's blob exists with the right size
   and sha256; every image manifest's layers decompress (format sniffed from the bytes, not
   the media type) to the config's diff_ids; history non-empty entries == layers.
2. skopeo inspect on every layout and archive; umoci stat on the gzip-only layouts.
3. The runtime claims, by running the binaries inside the unpacked images (root only; chroot
   in a private mount namespace with /proc mounted, through `unshare`):
   go-libs /app runs, rpath/runpath resolve, hello-c-libz misses libz.so.1; go-oldglibc fails
   with "version `GLIBC_2.34' not found"; musl /app runs and app-cgo-glibc cannot be exec'd.
Prints one line per check and "N passed, M failed" at the end; exits 1 on failure.
"""
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "out")
RESULTS = [0, 0]


def check(name, ok, detail=""):
    RESULTS[0 if ok else 1] += 1
    print(("ok   " if ok else "FAIL ") + name + (f"  ({detail})" if detail and not ok else ""))
    return ok


def sha_file(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for c in iter(lambda: f.read(1 << 20), b""):
            h.update(c)
    return h.hexdigest()


def diff_id(p):
    with open(p, "rb") as f:
        magic = f.read(4)
    h = hashlib.sha256()
    if magic[:3] == b"\x1f\x8b\x08":
        with gzip.open(p, "rb") as f:
            for c in iter(lambda: f.read(1 << 20), b""):
                h.update(c)
        kind = "gzip"
    elif magic == b"\x28\xb5\x2f\xfd":
        proc = subprocess.Popen(["zstd", "-dc", p], stdout=subprocess.PIPE)
        for c in iter(lambda: proc.stdout.read(1 << 20), b""):
            h.update(c)
        proc.wait()
        kind = "zstd"
    else:
        with open(p, "rb") as f:
            for c in iter(lambda: f.read(1 << 20), b""):
                h.update(c)
        kind = "none"
    return "sha256:" + h.hexdigest(), kind


def blob(layout, desc):
    return os.path.join(layout, "blobs", "sha256", desc["digest"].split(":", 1)[1])


def check_layout(name, layout):
    ok = True
    idx = json.load(open(os.path.join(layout, "index.json")))
    todo = list(idx["manifests"])
    images = 0
    cache = {}
    while todo:
        d = todo.pop(0)
        p = blob(layout, d)
        if not os.path.exists(p) or os.path.getsize(p) != d["size"] or \
                "sha256:" + sha_file(p) != d["digest"]:
            return check(f"{name}: blob {d['digest'][:19]}", False, "missing or wrong size/digest")
        doc = json.load(open(p))
        if "manifests" in doc:
            todo.extend(doc["manifests"])
            continue
        if d.get("platform", {}).get("os") == "unknown":
            continue  # attestation manifest
        images += 1
        cfgd = doc["config"]
        cp = blob(layout, cfgd)
        if "sha256:" + sha_file(cp) != cfgd["digest"]:
            return check(f"{name}: config digest", False)
        cfg = json.load(open(cp))
        diff_ids = cfg["rootfs"]["diff_ids"]
        if len(diff_ids) != len(doc["layers"]):
            return check(f"{name}: diff_ids vs layers", False)
        hist = [h for h in cfg.get("history", []) if not h.get("empty_layer")]
        if cfg.get("history") and len(hist) != len(diff_ids):
            ok = check(f"{name}: history entries vs layers", False, f"{len(hist)} != {len(diff_ids)}")
        for l, want in zip(doc["layers"], diff_ids):
            lp = blob(layout, l)
            if "sha256:" + sha_file(lp) != l["digest"] or os.path.getsize(lp) != l["size"]:
                return check(f"{name}: layer {l['digest'][:19]}", False, "digest/size")
            if lp not in cache:
                cache[lp] = diff_id(lp)
            got, kind = cache[lp]
            if got != want:
                return check(f"{name}: diff_id of {l['digest'][:19]}", False, f"{got} != {want}")
            label = "zstd" if l["mediaType"].endswith("zstd") else \
                "gzip" if l["mediaType"].endswith(("gzip", "tar.gzip")) else "none"
            if label != kind and not name.startswith("clean-uncompressed-mislabelled"):
                ok = check(f"{name}: media type {l['mediaType']} vs {kind}", False)
            if name.startswith("clean-uncompressed-mislabelled") and not (label == "gzip" and kind == "none"):
                ok = check(f"{name}: expected gzip label on an uncompressed blob", False)
    return check(f"{name}: layout, digests, diff_ids ({images} image manifest(s))",
                 ok and images > 0)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def main():
    layouts = sorted(os.listdir(os.path.join(OUT, "images")))
    for n in layouts:
        p = os.path.join(OUT, "images", n)
        if os.path.isdir(p):
            check_layout(n, p)
    if os.path.exists(os.path.join(HERE, "demo", "index.json")):
        check_layout("demo", os.path.join(HERE, "demo"))

    if shutil.which("skopeo"):
        for n in layouts:
            p = os.path.join(OUT, "images", n)
            if not os.path.isdir(p) or n in ("clean-multiarch-flat", "clean-v2s2"):
                # the flat index has no ref name (skopeo needs one to pick an image); skopeo
                # 1.9 and umoci 0.4 do not accept Docker media types in an OCI layout.
                continue
            r = run(["skopeo", "inspect", f"oci:{p}:latest"])
            check(f"skopeo inspect oci:{n}:latest", r.returncode == 0, r.stderr.strip()[-200:])
        for a in sorted(os.listdir(os.path.join(OUT, "archives"))):
            t = "oci-archive" if a.endswith("-oci.tar") else "docker-archive"
            r = run(["skopeo", "inspect", f"{t}:{os.path.join(OUT, 'archives', a)}"])
            check(f"skopeo inspect {t}:{a}", r.returncode == 0, r.stderr.strip()[-200:])
        r = run(["skopeo", "inspect", "--override-arch", "arm64",
                 f"oci:{OUT}/images/clean-multiarch:latest"])
        check("skopeo picks arm64 from clean-multiarch",
              r.returncode == 0 and json.loads(r.stdout)["Architecture"] == "arm64")
    if shutil.which("umoci"):
        for n in ["clean", "go-rules", "fs-rules", "cfg-root", "demo"]:
            lay = os.path.join(HERE, "demo") if n == "demo" else f"{OUT}/images/{n}"
            r = run(["umoci", "stat", "--image", f"{lay}:latest"])
            check(f"umoci stat {n}", r.returncode == 0, r.stderr.strip()[-200:])

    if os.geteuid() == 0 and shutil.which("unshare") and shutil.which("umoci"):
        tmp = tempfile.mkdtemp(prefix="imgaudit-verify-")
        try:
            runtime_checks(tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    else:
        print("skip runtime checks (need root, unshare, umoci)")

    print(f"{RESULTS[0]} passed, {RESULTS[1]} failed")
    sys.exit(1 if RESULTS[1] else 0)


def runtime_checks(tmp):
    def unpack(n):
        d = os.path.join(tmp, n)
        r = run(["umoci", "unpack", "--rootless", "--image", f"{OUT}/images/{n}:latest", d])
        check(f"umoci unpack {n}", r.returncode == 0, r.stderr.strip()[-200:])
        return os.path.join(d, "rootfs")

    def inside(root, *argv):
        os.makedirs(os.path.join(root, "proc"), exist_ok=True)
        return run(["unshare", "-m", "--fork", "sh", "-c",
                    'mount -t proc proc "$0/proc" && exec chroot "$0" "$@"', root, *argv])

    r = unpack("go-libs")
    p = inside(r, "/app")
    check("go-libs: /app (cgo glibc) runs", p.returncode == 0 and "app v1.0.0" in p.stdout,
          p.stderr)
    for b in ["rpath", "runpath"]:
        p = inside(r, f"/opt/hello/bin/hello-c-{b}")
        check(f"go-libs: hello-c-{b} resolves libgreet.so.1 via $ORIGIN/../lib",
              p.returncode == 0 and "libgreet" in p.stdout, p.stderr)
    p = inside(r, "/usr/local/bin/hello-c-libz")
    check("go-libs: hello-c-libz fails on libz.so.1", p.returncode != 0 and "libz.so.1" in p.stderr)
    r = unpack("go-oldglibc")
    p = inside(r, "/usr/local/bin/hello-c-glibc")
    check("go-oldglibc: version `GLIBC_2.34' not found",
          p.returncode != 0 and "GLIBC_2.34' not found" in p.stderr, p.stderr)
    r = unpack("musl")
    p = inside(r, "/app")
    check("musl: /app (cgo musl) runs", p.returncode == 0 and "app v1.0.0" in p.stdout, p.stderr)
    p = inside(r, "/usr/local/bin/app-cgo-glibc")
    check("musl: app-cgo-glibc cannot be exec'd (no glibc loader)",
          p.returncode != 0 and "No such file" in p.stderr, p.stderr)
    r = unpack("fs-rules")
    st = os.lstat(os.path.join(r, "usr/local/bin/suid-helper"))
    check("fs-rules: setuid bit kept", st.st_mode & 0o4000 != 0)
    check("fs-rules: whiteout removed /opt/data/dataset.bin",
          not os.path.exists(os.path.join(r, "opt/data/dataset.bin")))
    check("fs-rules: opaque dir /opt/cache keeps only c.txt",
          sorted(os.listdir(os.path.join(r, "opt/cache"))) == ["c.txt"])
    check("fs-rules: no CA bundle, no zoneinfo",
          not os.path.exists(os.path.join(r, "etc/ssl")) and
          not os.path.exists(os.path.join(r, "usr/share/zoneinfo")))
    p = inside(r, "/bin/sh", "-c", "echo shell-ok")
    check("fs-rules: busybox /bin/sh runs", p.returncode == 0 and "shell-ok" in p.stdout, p.stderr)
    p = inside(r, "/usr/bin/make", "--version")
    check("fs-rules: host make runs with the copied libraries", p.returncode == 0, p.stderr)
    p = inside(r, "/usr/bin/dpkg", "--version")
    check("fs-rules: host dpkg runs with the copied libraries", p.returncode == 0, p.stderr)


if __name__ == "__main__":
    main()
