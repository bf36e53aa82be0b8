#!/usr/bin/env python3
"""Publish local Go modules into a file:// GOPROXY tree, deterministically.

    mkproxy.py OUTDIR MODDIR@VERSION [MODDIR@VERSION ...]

For every module directory (containing go.mod) it writes
    OUTDIR/<module path>/@v/list
    OUTDIR/<module path>/@v/<version>.info   {"Version": ..., "Time": ...}
    OUTDIR/<module path>/@v/<version>.mod    (the go.mod bytes)
    OUTDIR/<module path>/@v/<version>.zip    (entries under <module>@<version>/)
which is the layout `GOPROXY=file://OUTDIR` reads (go help goproxy). Zip entries are sorted and
carry a fixed timestamp, so the same sources give the same bytes (and the same h1: sums).
"""
import json
import os
import sys
import zipfile

TIME = os.environ.get("PROXY_TIME", "2024-01-01T00:00:00Z")
ZIP_DATE = (2024, 1, 1, 0, 0, 0)


def module_path(moddir):
    with open(os.path.join(moddir, "go.mod")) as f:
        for line in f:
            if line.startswith("module "):
                return line.split()[1]
    raise SystemExit(f"{moddir}: no module line in go.mod")


def publish(out, moddir, version):
    mod = module_path(moddir)
    vdir = os.path.join(out, mod, "@v")
    os.makedirs(vdir, exist_ok=True)
    files = []
    for root, dirs, names in os.walk(moddir):
        dirs.sort()
        for n in sorted(names):
            p = os.path.join(root, n)
            files.append(os.path.relpath(p, moddir).replace(os.sep, "/"))
    zpath = os.path.join(vdir, version + ".zip")
    with zipfile.ZipFile(zpath + ".tmp", "w", zipfile.ZIP_DEFLATED) as z:
        for rel in sorted(files):
            zi = zipfile.ZipInfo(f"{mod}@{version}/{rel}", ZIP_DATE)
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            with open(os.path.join(moddir, rel), "rb") as f:
                z.writestr(zi, f.read())
    os.replace(zpath + ".tmp", zpath)
    with open(os.path.join(moddir, "go.mod"), "rb") as f:
        gomod = f.read()
    with open(os.path.join(vdir, version + ".mod"), "wb") as f:
        f.write(gomod)
    with open(os.path.join(vdir, version + ".info"), "w") as f:
        json.dump({"Version": version, "Time": TIME}, f)
        f.write("\n")
    listp = os.path.join(vdir, "list")
    versions = set()
    if os.path.exists(listp):
        versions = set(open(listp).read().split())
    versions.add(version)
    with open(listp, "w") as f:
        f.write("".join(v + "\n" for v in sorted(versions)))
    print(f"published {mod}@{version}")


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    out = sys.argv[1]
    for arg in sys.argv[2:]:
        moddir, version = arg.rsplit("@", 1)
        publish(out, moddir, version)


if __name__ == "__main__":
    main()
