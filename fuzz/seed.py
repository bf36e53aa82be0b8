#!/usr/bin/env python3
"""Seeds fuzz/corpus/<target>/ from the fixtures (`make -C testdata fixtures` first).

Every seed is real tool output: layer blobs, manifests, indexes and configs of the fixture
images (testdata/out/images, built by testdata/build.sh), `docker save` / skopeo archives
(testdata/out/archives), the ELF and Go binaries the fixtures are made of (testdata/out/bin),
loader files from the images' own layers and caches written by glibc's ldconfig, small layers
written here by GNU tar, gzip and zstd, the policy examples (imgaudit.example.toml, the
```toml blocks of the docs, the built-in profiles), and AdmissionReview bodies of the shape
the webhook tests send for every workload kind, and the WWW-Authenticate values of the
registry tests with those public registries send. Seeds are named by
their content's sha1, as libFuzzer names corpus files, so re-running adds nothing twice.

Usage: fuzz/seed.py [TARGET ...]   (default: every target)
"""

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "testdata" / "out"
CORPUS = ROOT / "fuzz" / "corpus"
# Must equal audit_core::fuzzing::SEPARATOR.
SEP = b"\0--imgaudit-fuzz--\0"
# Layer blobs larger than this are left out: the fuzzer mutates whole inputs, and a few
# small layers reach the same code as the multi-megabyte ones, a hundred times faster.
MAX_LAYER_SEED = 256 << 10
# Go binaries are megabytes; one static and one cgo binary cover the Go build-info paths.
GO_SEEDS = ["tool", "app-cgo-musl"]
# Go modinfo framing sentinels (cmd/go/internal/modload/build.go).
MODINFO_START = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
MODINFO_END = bytes.fromhex("f932433186182072008242104116d8f2")
LOADER_FILE = re.compile(
    r"^(etc/ld\.so\.cache|etc/ld\.so\.conf|etc/ld\.so\.conf\.d/.*\.conf|etc/ld-musl-.*\.path)$"
)


def put(target, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def need_fixtures():
    if not (OUT / "images").is_dir():
        sys.exit("fuzz/seed.py: testdata/out/images is missing; run `make fixtures` first")


def blobs():
    """(path, bytes) of every blob of every fixture image."""
    for p in sorted((OUT / "images").glob("*/blobs/*/*")):
        yield p


def json_blobs():
    for p in blobs():
        if p.stat().st_size > 4 << 20:
            continue
        try:
            doc = json.loads(p.read_bytes())
        except ValueError:
            continue
        yield p, doc


def image_layers():
    """Layer blob paths of each fixture image, base first, from its manifests."""
    out = {}
    for p, doc in json_blobs():
        if isinstance(doc, dict) and isinstance(doc.get("layers"), list):
            store = p.parent
            out[p] = [store / l["digest"].split(":", 1)[1] for l in doc["layers"]]
    return out


def decompress(blob):
    if blob[:2] == b"\x1f\x8b":
        return gzip.decompress(blob)
    if blob[:4] == b"\x28\xb5\x2f\xfd":
        return subprocess.run(
            ["zstd", "-dc"], input=blob, stdout=subprocess.PIPE, check=True
        ).stdout
    return blob


def members(layer, keep):
    """(name, bytes) of the regular files of a fixture layer for which keep(name, size);
    layers that are not tars (a fixture may hold a broken one on purpose) yield nothing."""
    try:
        with tarfile.open(fileobj=io.BytesIO(decompress(layer.read_bytes()))) as t:
            for m in t.getmembers():
                name = m.name.lstrip("./")
                if m.isfile() and keep(name, m.size):
                    yield name, t.extractfile(m).read()
    except (tarfile.TarError, OSError, EOFError):
        return


def tool_layers():
    """Small layers by GNU tar in three formats, each plain, gzip, zstd, and zstd with a
    skippable frame and two data frames (what `zstd:chunked` and `zstd` on concatenated
    input write)."""
    hello = (OUT / "bin" / "hello-c-glibc").read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        r = Path(tmp) / "root"
        (r / "etc" / "ld.so.conf.d").mkdir(parents=True)
        (r / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")
        (r / "etc" / "ld.so.conf").write_text("include /etc/ld.so.conf.d/*.conf\n")
        (r / "etc" / "ld.so.conf.d" / "local.conf").write_text("/usr/local/lib\n")
        (r / "etc" / "os-release").write_text('ID=debian\nVERSION_ID="12"\n')
        (r / "usr" / "local" / "bin").mkdir(parents=True)
        app = r / "usr" / "local" / "bin" / "app"
        app.write_bytes(hello)
        app.chmod(0o4755)
        (r / "usr" / "local" / "bin" / "run.sh").write_text("#!/bin/sh\nexec /usr/local/bin/app \"$@\"\n")
        os.symlink("usr/local/bin/app", r / "app")
        os.link(app, r / "usr" / "local" / "bin" / "app-hardlink")
        deep = r / ("d" * 60) / ("e" * 60)
        deep.mkdir(parents=True)
        (deep / ("long-name-" + "f" * 90)).write_text("a path longer than ustar's 100 bytes\n")
        (r / "root").mkdir()
        (r / "root" / ".netrc").write_text("machine example.com login app password hunter2-but-longer\n")
        (r / "var" / "lib").mkdir(parents=True)
        (r / "var" / "lib" / ".wh.cache").write_text("")
        (r / "opt").mkdir()
        (r / "opt" / ".wh..wh..opq").write_text("")
        os.symlink("/etc/loop-b", r / "etc" / "loop-a")
        os.symlink("/etc/loop-a", r / "etc" / "loop-b")
        for fmt in ["pax", "gnu", "ustar"]:
            plain = subprocess.run(
                ["tar", "-C", str(r), f"--format={fmt}", "--numeric-owner", "-cf", "-", "."],
                stdout=subprocess.PIPE,
                check=True,
            ).stdout
            yield plain
            yield subprocess.run(["gzip", "-n", "-1"], input=plain, stdout=subprocess.PIPE, check=True).stdout
            z = subprocess.run(["zstd", "-q", "-1", "-c"], input=plain, stdout=subprocess.PIPE, check=True).stdout
            yield z
            half = len(plain) // 2
            z1 = subprocess.run(["zstd", "-q", "-c"], input=plain[:half], stdout=subprocess.PIPE, check=True).stdout
            z2 = subprocess.run(["zstd", "-q", "-c"], input=plain[half:], stdout=subprocess.PIPE, check=True).stdout
            # RFC 8878 §3.1.2: skippable frame, magic 0x184D2A50..5F, LE length, payload.
            skippable = (0x184D2A50).to_bytes(4, "little") + (8).to_bytes(4, "little") + b"chunked!"
            yield skippable + z1 + z2


def seed_layers():
    for layers in image_layers().values():
        small = [l.read_bytes() for l in layers if l.exists() and l.stat().st_size <= MAX_LAYER_SEED]
        for b in small:
            put("layers", b)
        if len(small) > 1:
            put("layers", SEP.join(small))
    tl = list(tool_layers())
    for b in tl:
        put("layers", b)
    # A lower and an upper layer: the upper one's whiteouts act on the lower one.
    put("layers", SEP.join(tl[:2]))


def seed_file():
    for p in sorted((OUT / "bin").rglob("*")):
        if not p.is_file():
            continue
        b = p.read_bytes()
        if p.stat().st_size <= 1 << 20 or p.name in GO_SEEDS:
            put("file", b)
        # The module info text inside each Go binary, for the text parser.
        s = b.find(MODINFO_START)
        e = b.find(MODINFO_END, s + 1)
        if s >= 0 and e > s:
            put("file", b[s + len(MODINFO_START) : e])
            put("file", b[s : e + len(MODINFO_END)])
    # Scripts and configuration files from the fixture layers.
    for layers in image_layers().values():
        for l in layers:
            if not l.exists() or l.stat().st_size > 4 << 20:
                continue
            for name, data in members(l, lambda n, size: 0 < size <= 16 << 10):
                if data.startswith(b"#!") or name.startswith("etc/"):
                    put("file", data)


def loader_files():
    """{image: {path: bytes}} of the loader files in each fixture image's layers."""
    out = {}
    for manifest, layers in image_layers().items():
        files = {}
        for l in layers:
            if not l.exists():
                continue
            for name, data in members(l, lambda n, size: LOADER_FILE.match(n)):
                files[name] = data
        if files:
            out[manifest] = files
    return out


def ldconfig_caches():
    """Caches written by glibc's ldconfig in its three formats, for the build machine's
    library directories plus one with a fixture library."""
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    with tempfile.TemporaryDirectory() as tmp:
        lib = Path(tmp) / "lib"
        lib.mkdir()
        shutil.copy(OUT / "bin" / "libgreet.so.1", lib)
        conf = Path(tmp) / "ld.so.conf"
        conf.write_text(f"{lib}\n")
        for fmt in ["new", "compat", "old"]:
            cache = Path(tmp) / f"cache.{fmt}"
            subprocess.run([ldconfig, "-c", fmt, "-X", "-C", str(cache), "-f", str(conf)], check=True)
            yield cache.read_bytes()


def seed_ldso():
    host = {}
    for p in [Path("/etc/ld.so.conf"), *sorted(Path("/etc/ld.so.conf.d").glob("*.conf"))]:
        if p.is_file():
            host[str(p).lstrip("/")] = p.read_bytes()
    caches = list(ldconfig_caches())
    for i, files in enumerate([host, *loader_files().values()]):
        conf = files.get("etc/ld.so.conf", b"")
        confd = [v for k, v in sorted(files.items()) if k.startswith("etc/ld.so.conf.d/")][:2]
        confd += [b""] * (2 - len(confd))
        musl = next((v for k, v in files.items() if k.startswith("etc/ld-musl-")), b"")
        put("ldso", SEP.join([caches[i % len(caches)], conf, *confd, musl]))
    for c in caches:
        put("ldso", c)


def seed_image_json():
    for p, doc in json_blobs():
        put("image_json", p.read_bytes())
    for p in sorted((OUT / "images").glob("*/index.json")):
        put("image_json", p.read_bytes())
    for a in sorted((OUT / "archives").glob("*.tar")):
        with tarfile.open(a) as t:
            for m in t.getmembers():
                if m.isfile() and m.name.endswith(".json") and m.size <= 4 << 20:
                    data = t.extractfile(m).read()
                    put("image_json", data)
                    if m.name == "manifest.json":
                        # The target's tarball holds the config and one layer under the
                        # names `docker save` used before Docker 25.
                        images = json.loads(data)
                        for i in images:
                            i["Config"], i["Layers"] = "config.json", ["layer.tar"]
                        put("image_json", json.dumps(images).encode())


def seed_policy():
    put("policy", (ROOT / "imgaudit.example.toml").read_bytes())
    # The built-in profiles are `[profiles.NAME]` tables of a policy file, written bare.
    builtin = (ROOT / "crates" / "audit-core" / "src" / "profiles.toml").read_text()
    put("policy", re.sub(r"^\[(\[?)", r"[\1profiles.", builtin, flags=re.M).encode())
    for md in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for block in re.findall(r"```toml\n(.*?)```", md.read_text(), re.S):
            put("policy", block.encode())


def review(group, kind, op, ns, obj, old=None, sub=None, uid=1):
    """An AdmissionReview as the API server sends it (the shape of review() in
    crates/audit-cli/tests/serve.rs, after the Kubernetes admission webhook docs)."""
    resource = kind.lower() + "s"
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": f"705ab4f5-6393-11e8-b7cc-42010a80{uid:04}",
            "kind": {"group": group, "version": "v1", "kind": kind},
            "resource": {"group": group, "version": "v1", "resource": resource},
            "subResource": sub,
            "requestKind": {"group": group, "version": "v1", "kind": kind},
            "requestResource": {"group": group, "version": "v1", "resource": resource},
            "name": "web",
            "namespace": ns,
            "operation": op,
            "userInfo": {"username": "admin", "uid": "014fbff9a07c", "groups": ["system:authenticated"]},
            "object": obj,
            "oldObject": old,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions" if op == "CREATE" else "UpdateOptions"},
        },
    }


def seed_admission_review():
    images = [
        "registry.example.com/apps/good:1",
        "ghcr.io/acme/app@sha256:" + hashlib.sha256(b"app").hexdigest(),
        "nginx",
        "docker.io/library/busybox:1.36",
        "localhost:5000/apps/musl:1",
        "quay.io/other/tool:latest",
    ]

    def spec(imgs, init=(), eph=(), volume=None):
        c = lambda l: [{"name": f"c{i}", "image": im, "imagePullPolicy": "IfNotPresent"} for i, im in enumerate(l)]
        s = {"containers": c(imgs), "restartPolicy": "Always", "serviceAccountName": "default"}
        if init:
            s["initContainers"] = c(init)
        if eph:
            s["ephemeralContainers"] = [{"name": "debugger", "image": e, "targetContainerName": "c0"} for e in eph]
        if volume:
            s["volumes"] = [{"name": "data", "image": {"reference": volume, "pullPolicy": "IfNotPresent"}}]
        return s

    tpl = lambda s: {"metadata": {"labels": {"app": "web"}}, "spec": s}
    sel = {"matchLabels": {"app": "web"}}
    kinds = [
        ("", "Pod", lambda s: s),
        ("", "PodTemplate", lambda s: None),
        ("", "ReplicationController", lambda s: {"replicas": 1, "selector": {"app": "web"}, "template": tpl(s)}),
        ("apps", "Deployment", lambda s: {"replicas": 2, "selector": sel, "template": tpl(s)}),
        ("apps", "ReplicaSet", lambda s: {"selector": sel, "template": tpl(s)}),
        ("apps", "StatefulSet", lambda s: {"serviceName": "web", "selector": sel, "template": tpl(s)}),
        ("apps", "DaemonSet", lambda s: {"selector": sel, "template": tpl(s)}),
        ("batch", "Job", lambda s: {"template": tpl(s)}),
        ("batch", "CronJob", lambda s: {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": tpl(s)}}}),
        ("", "ConfigMap", lambda s: None),
    ]
    n = 0
    for ns in ["default", "kube-system", "dev-alice", "payments"]:
        for group, kind, wrap in kinds:
            n += 1
            s = spec(images[n % 3 : n % 3 + 2], init=images[3:4], volume=images[4] if n % 2 else None)
            api = f"{group}/v1" if group else "v1"
            obj = {"apiVersion": api, "kind": kind, "metadata": {"name": "web", "namespace": ns}}
            if kind == "PodTemplate":
                obj["template"] = tpl(s)
            elif kind == "ConfigMap":
                obj["data"] = {"image": images[0]}
            else:
                obj["spec"] = wrap(s)
            put("admission_review", json.dumps(review(group, kind, "CREATE", ns, obj, uid=n)).encode())
    # An ephemeral container added to a running Pod, and a DELETE.
    pod = lambda s: {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"}, "spec": s}
    old = pod(spec(images[:1]))
    new = pod(spec(images[:1], eph=images[5:6]))
    put("admission_review", json.dumps(review("", "Pod", "UPDATE", "default", new, old, sub="ephemeralcontainers")).encode())
    put("admission_review", json.dumps(review("", "Pod", "DELETE", "default", None, old)).encode())
    # Bodies the webhook must refuse (crates/audit-cli/tests/serve.rs).
    for body in [
        b'{"apiVersion": ',
        b'{"apiVersion":"v1","kind":"Pod","metadata":{}}',
        b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","kind":{"kind":"Pod"},"operation":"CREATE","object":{"spec":{"containers":7}}}}',
    ]:
        put("admission_review", body)


def seed_auth_challenge():
    # WWW-Authenticate values quoted in the registry tests (placeholders filled in).
    for rs in sorted((ROOT / "crates").rglob("*.rs")):
        for lit in re.findall(r'r#"([^"]*realm=.*?)"#|"((?:[^"\\]|\\.)*realm=(?:[^"\\]|\\.)*)"', rs.read_text()):
            raw = lit[0] or re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m[1], m[1]), lit[1])
            raw = raw.replace("{port}", "5000").replace("{scope}", ',scope="repository:apps/good:pull"').replace("{}", "127.0.0.1:5000")
            put("auth_challenge", raw.encode())
    # What public registries send (distribution token auth, docs/spec/auth/token.md), the
    # insufficient_scope form, and several challenges in one value.
    for v in [
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"',
        'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:acme/app:pull"',
        'Bearer realm="https://quay.io/v2/auth",service="quay.io"',
        'Basic realm="https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com"',
        'Bearer realm="https://harbor.example.com/service/token",service="harbor-registry"',
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull",error="insufficient_scope"',
        'Basic realm="Registry Realm", Bearer realm="https://r.example/token", Negotiate',
        "Basic dXNlcjpwYXNz==",
    ]:
        put("auth_challenge", v.encode())
    # Retry-After (RFC 9110 section 10.2.3) and distribution error bodies.
    for v in [b"120", b"Sun, 06 Nov 1994 08:49:37 GMT", b"Wed, 21 Oct 2026 07:28:00 GMT",
              b'{"errors":[{"code":"TOOMANYREQUESTS","message":"rate limit","detail":{}}]}',
              b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required\\nretry"}]}']:
        put("auth_challenge", v)


TARGETS = {
    "layers": seed_layers,
    "file": seed_file,
    "ldso": seed_ldso,
    "image_json": seed_image_json,
    "policy": seed_policy,
    "admission_review": seed_admission_review,
    "auth_challenge": seed_auth_challenge,
}


def main():
    need_fixtures()
    names = sys.argv[1:] or list(TARGETS)
    for n in names:
        if n not in TARGETS:
            sys.exit(f"fuzz/seed.py: unknown target {n}; known: {' '.join(TARGETS)}")
        TARGETS[n]()
        d = CORPUS / n
        count = len(list(d.iterdir())) if d.is_dir() else 0
        if count == 0:
            sys.exit(f"fuzz/seed.py: no seeds for {n}")
        print(f"{n}: {count} seeds in {d.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
