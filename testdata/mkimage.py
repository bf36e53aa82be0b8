#!/usr/bin/env python3
"""mkimage: a small deterministic OCI / Docker image builder for imgaudit's test fixtures.

Python standard library only (tarfile, gzip, json, hashlib); zstd layers go through the `zstd`
command-line tool. The same input gives byte-identical output: every tar entry has a fixed
mtime, uid/gid and mode; gzip streams carry mtime 0 and no file name; JSON is written compactly
in a fixed key order.

Python API (what images.py uses):

    from mkimage import Layer, Image, Index, write_layout, write_docker_save, ...
    base = Layer()
    base.dir("etc")
    base.file("etc/passwd", text="root:x:0:0:root:/root:/sbin/nologin\\n")
    base.file("app", src="out/bin/app-static", mode=0o755)
    base.symlink("etc/os-release", "../usr/lib/os-release")
    base.hardlink("usr/bin/gmake", "usr/bin/make")
    top = Layer(compression="zstd")
    top.whiteout("opt/big.bin")          # writes opt/.wh.big.bin
    top.opaque("opt/cache")              # writes opt/cache/.wh..wh..opq
    img = Image(config={"User": "65532", "Entrypoint": ["/app"]})
    img.add(base, "COPY rootfs/ / # buildkit")         # a layer and its history entry
    img.meta("USER 65532")                            # an empty_layer history entry
    write_layout("out/images/x", {"latest": img})     # OCI image layout
    write_docker_save("x.tar", img, "imgaudit/x:latest")        # classic `docker save`
    write_docker25_save("x25.tar", img, "imgaudit/x:latest")    # Docker 25+ (OCI inside)
    write_oci_archive("x-oci.tar", "out/images/x")             # tar of a layout

Command line (JSON spec, see SPEC_EXAMPLE at the bottom of this file):

    mkimage.py SPEC.json --layout DIR [--tag latest] [--docker-save T.tar]
               [--docker25-save T.tar] [--oci-archive T.tar] [--repo-tag name:tag]
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

EPOCH = int(os.environ.get("SOURCE_DATE_EPOCH", "1704067200"))  # 2024-01-01T00:00:00Z
CREATED = "2024-01-01T00:00:00Z" if EPOCH == 1704067200 else \
    __import__("datetime").datetime.utcfromtimestamp(EPOCH).strftime("%Y-%m-%dT%H:%M:%SZ")

# Media types (https://github.com/opencontainers/image-spec/blob/main/media-types.md).
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = {"none": "application/vnd.oci.image.layer.v1.tar",
             "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
             "zstd": "application/vnd.oci.image.layer.v1.tar+zstd"}
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = {"none": "application/vnd.docker.image.rootfs.diff.tar",
                "gzip": "application/vnd.docker.image.rootfs.diff.tar.gzip"}
REF_NAME = "org.opencontainers.image.ref.name"

_WORK = None  # scratch dir for layer blobs, created on first use


def workdir():
    global _WORK
    if _WORK is None:
        base = os.environ.get("MKIMAGE_WORK")
        if base:
            os.makedirs(base, exist_ok=True)
        _WORK = tempfile.mkdtemp(prefix="mkimage-", dir=base)
    return _WORK


def cleanup():
    global _WORK
    if _WORK is not None:
        shutil.rmtree(_WORK, ignore_errors=True)
        _WORK = None


def jbytes(obj):
    """Compact JSON, keys in insertion order (like Go's encoding/json on structs)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class _HashWriter:
    """File-like sink that hashes and counts what passes through to `inner`."""

    def __init__(self, inner):
        self.inner, self.h, self.n = inner, hashlib.sha256(), 0

    def write(self, b):
        self.h.update(b)
        self.n += len(b)
        return self.inner.write(b)

    def flush(self):
        self.inner.flush()


class _Concat:
    """Reader over a file followed by extra bytes."""

    def __init__(self, f, extra):
        self.f, self.extra = f, io.BytesIO(extra)

    def read(self, n=-1):
        b = self.f.read(n)
        if n < 0:
            return b + self.extra.read()
        if len(b) < n:
            b += self.extra.read(n - len(b))
        return b


# --------------------------------------------------------------------------- layers
class Entry:
    __slots__ = ("kind", "path", "mode", "uid", "gid", "mtime", "data", "src", "link", "size",
                 "suffix")

    def __init__(self, kind, path, mode=0o644, uid=0, gid=0, mtime=None, data=None, src=None,
                 link=None, size=None, suffix=b""):
        self.kind, self.path, self.mode, self.uid, self.gid = kind, path, mode, uid, gid
        self.mtime = EPOCH if mtime is None else mtime
        self.data, self.src, self.link, self.size = data, src, link, size
        self.suffix = suffix


def _clean(path):
    p = path.lstrip("/")
    while p.startswith("./"):
        p = p[2:]
    return p.rstrip("/")


class Layer:
    """An ordered list of tar entries. Entries are written exactly in the order added."""

    def __init__(self, compression="gzip", level=6):
        assert compression in ("gzip", "zstd", "none"), compression
        self.entries = []
        self.compression, self.level = compression, level
        self._built = {}

    # -- entry constructors ------------------------------------------------------------
    def dir(self, path, mode=0o755, uid=0, gid=0, mtime=None):
        self.entries.append(Entry("dir", _clean(path), mode, uid, gid, mtime))
        return self

    def dirs(self, *paths, mode=0o755):
        """Directory entries for every path and its parents, each once, parents first."""
        seen = {e.path for e in self.entries if e.kind == "dir"}
        for p in paths:
            parts = _clean(p).split("/")
            for i in range(1, len(parts) + 1):
                q = "/".join(parts[:i])
                if q not in seen:
                    seen.add(q)
                    self.dir(q, mode=mode)
        return self

    def file(self, path, data=None, text=None, src=None, mode=0o644, uid=0, gid=0, mtime=None,
             suffix=b""):
        """A regular file from inline bytes/text, or from a host file `src` (read lazily at
        build time; `suffix` bytes are appended, e.g. to make copies of a binary differ)."""
        if text is not None:
            data = text.encode()
        if src is not None:
            e = Entry("file", _clean(path), mode, uid, gid, mtime, src=src,
                      size=os.path.getsize(src) + len(suffix), suffix=suffix)
        else:
            e = Entry("file", _clean(path), mode, uid, gid, mtime, data=data or b"",
                      size=len(data or b""))
        self.entries.append(e)
        return self

    def symlink(self, path, target, uid=0, gid=0, mtime=None):
        self.entries.append(Entry("symlink", _clean(path), 0o777, uid, gid, mtime, link=target))
        return self

    def hardlink(self, path, target, uid=0, gid=0, mtime=None, mode=0o644):
        self.entries.append(Entry("hardlink", _clean(path), mode, uid, gid, mtime,
                                  link=_clean(target)))
        return self

    def whiteout(self, path):
        d, _, name = _clean(path).rpartition("/")
        self.entries.append(Entry("file", (d + "/" if d else "") + ".wh." + name, 0o644, data=b"",
                                  size=0))
        return self

    def opaque(self, dirpath):
        self.entries.append(Entry("file", _clean(dirpath) + "/.wh..wh..opq", 0o644, data=b"",
                                  size=0))
        return self

    def tree(self, dest, srcdir, uid=0, gid=0, dir_mode=None, file_mode=None, skip=()):
        """Copy a host directory tree (sorted walk; symlinks kept as symlinks; modes kept
        unless overridden)."""
        dest = _clean(dest)
        st = os.lstat(srcdir)
        self.dir(dest, mode=dir_mode or (st.st_mode & 0o7777), uid=uid, gid=gid)
        for root, dnames, fnames in os.walk(srcdir):
            rel = os.path.relpath(root, srcdir)
            dnames[:] = sorted(d for d in dnames if d not in skip)
            names = sorted(set(dnames) | {f for f in fnames if f not in skip})
            for n in names:
                p = os.path.join(root, n)
                tp = dest + "/" + (n if rel == "." else rel + "/" + n)
                st = os.lstat(p)
                if os.path.islink(p):
                    self.symlink(tp, os.readlink(p), uid=uid, gid=gid)
                elif os.path.isdir(p):
                    self.dir(tp, mode=dir_mode or (st.st_mode & 0o7777), uid=uid, gid=gid)
                else:
                    self.file(tp, src=p, mode=file_mode or (st.st_mode & 0o7777), uid=uid, gid=gid)
        return self

    # -- serialization -----------------------------------------------------------------
    def _tarinfo(self, e):
        ti = tarfile.TarInfo(e.path + ("/" if e.kind == "dir" else ""))
        ti.mode, ti.uid, ti.gid, ti.mtime = e.mode, e.uid, e.gid, e.mtime
        ti.uname = ti.gname = ""
        if e.kind == "dir":
            ti.type = tarfile.DIRTYPE
        elif e.kind == "symlink":
            ti.type, ti.linkname = tarfile.SYMTYPE, e.link
        elif e.kind == "hardlink":
            ti.type, ti.linkname = tarfile.LNKTYPE, e.link
        else:
            ti.type, ti.size = tarfile.REGTYPE, e.size
        return ti

    def write_tar(self, fileobj):
        with tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT,
                          encoding="utf-8") as t:
            for e in self.entries:
                ti = self._tarinfo(e)
                if e.kind != "file":
                    t.addfile(ti)
                elif e.src is not None:
                    with open(e.src, "rb") as f:
                        t.addfile(ti, _Concat(f, e.suffix) if e.suffix else f)
                else:
                    t.addfile(ti, io.BytesIO(e.data))

    def build(self, compression=None, level=None):
        """Write the layer once per (compression, level) and return a LayerBlob."""
        compression = compression or self.compression
        level = self.level if level is None else level
        key = (compression, level)
        if key in self._built:
            return self._built[key]
        uncompressed = self._built.get("tar")
        if uncompressed is None:
            fd, tpath = tempfile.mkstemp(suffix=".tar", dir=workdir())
            with os.fdopen(fd, "wb") as raw:
                hw = _HashWriter(raw)
                self.write_tar(hw)
            uncompressed = (tpath, "sha256:" + hw.h.hexdigest(), hw.n)
            self._built["tar"] = uncompressed
        tpath, diff_id, tsize = uncompressed
        if compression == "none":
            blob = LayerBlob(tpath, diff_id, diff_id, tsize, "none", tpath)
        elif compression == "gzip":
            fd, gpath = tempfile.mkstemp(suffix=".tar.gz", dir=workdir())
            with os.fdopen(fd, "wb") as raw:
                hw = _HashWriter(raw)
                with gzip.GzipFile(filename="", mode="wb", compresslevel=level, fileobj=hw,
                                   mtime=0) as gz, open(tpath, "rb") as src:
                    shutil.copyfileobj(src, gz, 1 << 20)
            blob = LayerBlob(gpath, "sha256:" + hw.h.hexdigest(), diff_id, hw.n, "gzip", tpath)
        else:
            fd, zpath = tempfile.mkstemp(suffix=".tar.zst", dir=workdir())
            os.close(fd)
            subprocess.run(["zstd", "-q", "-f", f"-{level}", "--no-progress", "-o", zpath,
                            tpath], check=True)
            blob = LayerBlob(zpath, "sha256:" + sha256_file(zpath), diff_id,
                             os.path.getsize(zpath), "zstd", tpath)
        self._built[key] = blob
        return blob


class LayerBlob:
    def __init__(self, path, digest, diff_id, size, compression, tar_path):
        self.path, self.digest, self.diff_id, self.size = path, digest, diff_id, size
        self.compression, self.tar_path = compression, tar_path


# --------------------------------------------------------------------------- history
def buildkit(instr):
    """BuildKit history form: instructions that ran on a build state get ' # buildkit'."""
    head = instr.split(None, 1)[0].upper()
    return instr + " # buildkit" if head in ("RUN", "COPY", "ADD") else instr


def classic(instr):
    """Classic (legacy) builder form: `/bin/sh -c #(nop) ...` for metadata and COPY/ADD,
    `/bin/sh -c CMD` for RUN."""
    head, _, rest = instr.partition(" ")
    head = head.upper()
    if head == "RUN":
        return "/bin/sh -c " + rest
    if head in ("COPY", "ADD"):
        return f"/bin/sh -c #(nop) {head} {rest}"
    return f"/bin/sh -c #(nop)  {instr}"


# --------------------------------------------------------------------------- images
class Blob:
    """A JSON (or other small) blob and its descriptor."""

    def __init__(self, media_type, data, **extra):
        self.media_type, self.data = media_type, data
        self.digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.size = len(data)
        self.extra = extra

    def descriptor(self, **more):
        d = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        d.update(self.extra)
        d.update(more)
        return d


class Image:
    """An image: ordered steps (layers with their history entry, and empty-layer history),
    a runtime config, and a platform."""

    def __init__(self, config=None, arch="amd64", os_="linux", variant=None, created=CREATED,
                 author=None, docker=False, annotations=None, compression=None, level=None,
                 history=True):
        self.config = dict(config or {})
        self.arch, self.os, self.variant = arch, os_, variant
        self.created, self.author = created, author
        self.docker = docker                # Docker v2s2 media types instead of OCI
        self.annotations = annotations
        self.compression, self.level = compression, level   # override every layer's
        self.with_history = history
        self.steps = []                     # (layer or None, history dict)

    def add(self, layer, created_by=None, comment=None, created=None):
        h = {"created": created or self.created}
        if created_by is not None:
            h["created_by"] = created_by
        if comment is not None:
            h["comment"] = comment
        elif created_by and created_by.endswith(" # buildkit"):
            h["comment"] = "buildkit.dockerfile.v0"
        self.steps.append((layer, h))
        return self

    def meta(self, created_by, comment=None, created=None):
        h = {"created": created or self.created, "created_by": created_by}
        if comment is not None:
            h["comment"] = comment
        elif not created_by.startswith("/bin/sh -c"):
            h["comment"] = "buildkit.dockerfile.v0"
        h["empty_layer"] = True
        self.steps.append((None, h))
        return self

    def copy(self, **changes):
        """A new image with the same steps and changed attributes (config is replaced)."""
        other = Image.__new__(Image)
        other.__dict__.update(self.__dict__)
        other.steps = list(self.steps)
        other.config = dict(self.config)
        for k, v in changes.items():
            setattr(other, k, v)
        return other

    def layers(self):
        return [l for l, _ in self.steps if l is not None]

    def blobs(self):
        out = []
        for l in self.layers():
            out.append(l.build(self.compression, self.level))
        return out

    def config_blob(self, layer_blobs=None):
        layer_blobs = self.blobs() if layer_blobs is None else layer_blobs
        cfg = {"created": self.created}
        if self.author:
            cfg["author"] = self.author
        cfg["architecture"] = self.arch
        if self.variant:
            cfg["variant"] = self.variant
        cfg["os"] = self.os
        cfg["config"] = self.config
        cfg["rootfs"] = {"type": "layers", "diff_ids": [b.diff_id for b in layer_blobs]}
        if self.with_history:
            cfg["history"] = [h for _, h in self.steps]
        return Blob(DOCKER_CONFIG if self.docker else OCI_CONFIG, jbytes(cfg))

    def layer_media_type(self, blob):
        if self.docker:
            if blob.compression not in DOCKER_LAYER:
                return OCI_LAYER[blob.compression]  # Docker uses the OCI type for zstd
            return DOCKER_LAYER[blob.compression]
        return OCI_LAYER[blob.compression]

    def platform(self):
        p = {"architecture": self.arch, "os": self.os}
        if self.variant:
            p["variant"] = self.variant
        return p

    def write_blobs(self, bdir):
        """Write config, layers and manifest into bdir (blobs/sha256); return the manifest
        Blob."""
        lbs = self.blobs()
        cfg = self.config_blob(lbs)
        _put(bdir, cfg)
        layers = []
        for b in lbs:
            _put_file(bdir, b.digest, b.path)
            layers.append({"mediaType": self.layer_media_type(b), "digest": b.digest,
                           "size": b.size})
        man = {"schemaVersion": 2,
               "mediaType": DOCKER_MANIFEST if self.docker else OCI_MANIFEST,
               "config": cfg.descriptor(), "layers": layers}
        if self.annotations:
            man["annotations"] = self.annotations
        mb = Blob(man["mediaType"], jbytes(man))
        _put(bdir, mb)
        return mb


class Attestation:
    """A BuildKit-style attestation manifest (platform unknown/unknown) that refers to an
    image manifest through vnd.docker.reference.digest. Not a runnable image."""

    def __init__(self, subject_image, name="imgaudit/image",
                 predicate_type="https://spdx.dev/Document"):
        self.subject, self.name, self.predicate_type = subject_image, name, predicate_type

    def write_blobs(self, bdir, subject_digest):
        stmt = {"_type": "https://in-toto.io/Statement/v0.1", "predicateType": self.predicate_type,
                "subject": [{"name": f"pkg:docker/{self.name}@latest?platform=linux%2Famd64",
                             "digest": {"sha256": subject_digest.split(":", 1)[1]}}],
                "predicate": {"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT",
                              "name": "sbom", "packages": []}}
        layer = Blob("application/vnd.in-toto+json", jbytes(stmt),
                     annotations={"in-toto.io/predicate-type": self.predicate_type})
        _put(bdir, layer)
        cfg = Blob(OCI_CONFIG, jbytes({"architecture": "unknown", "os": "unknown", "config": {},
                                       "rootfs": {"type": "layers",
                                                  "diff_ids": [layer.digest]}}))
        _put(bdir, cfg)
        man = Blob(OCI_MANIFEST, jbytes({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                                         "config": cfg.descriptor(),
                                         "layers": [layer.descriptor()]}))
        _put(bdir, man)
        return man


class Index:
    """A multi-platform image index. Entries: Image objects (platform taken from the image),
    Attestation objects (attached to the image they describe) or nested Index objects."""

    def __init__(self, entries, docker=False, annotations=None):
        self.entries, self.docker, self.annotations = entries, docker, annotations

    def manifest_descriptors(self, bdir):
        descs, by_image = [], {}
        for e in self.entries:
            if isinstance(e, Image):
                mb = e.write_blobs(bdir)
                by_image[id(e)] = mb.digest
                descs.append(mb.descriptor(platform=e.platform()))
            elif isinstance(e, Index):
                ib = e.write_blobs(bdir)
                descs.append(ib.descriptor())
        for e in self.entries:
            if isinstance(e, Attestation):
                subj = by_image[id(e.subject)]
                mb = e.write_blobs(bdir, subj)
                descs.append(mb.descriptor(
                    annotations={"vnd.docker.reference.digest": subj,
                                 "vnd.docker.reference.type": "attestation-manifest"},
                    platform={"architecture": "unknown", "os": "unknown"}))
        return descs

    def write_blobs(self, bdir):
        mt = DOCKER_LIST if self.docker else OCI_INDEX
        idx = {"schemaVersion": 2, "mediaType": mt, "manifests": self.manifest_descriptors(bdir)}
        if self.annotations:
            idx["annotations"] = self.annotations
        ib = Blob(mt, jbytes(idx))
        _put(bdir, ib)
        return ib


def _put(bdir, blob):
    p = os.path.join(bdir, blob.digest.split(":", 1)[1])
    if not os.path.exists(p):
        with open(p + ".tmp", "wb") as f:
            f.write(blob.data)
        os.replace(p + ".tmp", p)


def _put_file(bdir, digest, src):
    p = os.path.join(bdir, digest.split(":", 1)[1])
    if not os.path.exists(p):
        shutil.copyfile(src, p + ".tmp")
        os.replace(p + ".tmp", p)


def write_layout(out, refs, flat_index=None):
    """Write an OCI image layout at `out` (replaced if present).

    refs: {ref name: Image | Index}; each becomes an index.json entry annotated with
    org.opencontainers.image.ref.name (an Index is stored as a nested index blob).
    flat_index: alternatively an Index whose entries are written directly as index.json's
    manifests (no nesting, no ref names except the one in its annotations).
    """
    if os.path.exists(out):
        shutil.rmtree(out)
    bdir = os.path.join(out, "blobs", "sha256")
    os.makedirs(bdir)
    with open(os.path.join(out, "oci-layout"), "wb") as f:
        f.write(jbytes({"imageLayoutVersion": "1.0.0"}))
    if flat_index is not None:
        manifests = flat_index.manifest_descriptors(bdir)
    else:
        manifests = []
        for name, obj in refs.items():
            b = obj.write_blobs(bdir)
            manifests.append(b.descriptor(annotations={REF_NAME: name}))
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
    with open(os.path.join(out, "index.json"), "wb") as f:
        f.write(jbytes(index))
    for root, dirs, files in os.walk(out):
        for n in files:
            os.chmod(os.path.join(root, n), 0o644)
    return out


# --------------------------------------------------------------------------- archives
class _TarOut:
    """Deterministic outer tar (docker save / oci-archive): root-owned, fixed mtime."""

    def __init__(self, path, mtime=0):
        self.t = tarfile.open(path, "w", format=tarfile.PAX_FORMAT)
        self.mtime = mtime

    def _ti(self, name, typ, mode, size=0):
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.mtime, ti.size = typ, mode, self.mtime, size
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = ""
        return ti

    def dir(self, name):
        self.t.addfile(self._ti(name.rstrip("/") + "/", tarfile.DIRTYPE, 0o755))

    def data(self, name, data):
        self.t.addfile(self._ti(name, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))

    def file(self, name, src):
        with open(src, "rb") as f:
            self.t.addfile(self._ti(name, tarfile.REGTYPE, 0o644, os.path.getsize(src)), f)

    def close(self):
        self.t.close()


def _sorted_items(items):
    """Docker archives the save directory in lexical order (filepath.Walk)."""
    return sorted(items, key=lambda kv: kv[0])


def _repo_tag_parts(repo_tag):
    repo, _, tag = repo_tag.rpartition(":")
    if not repo or "/" in tag:
        repo, tag = repo_tag, "latest"
    return repo, tag


def write_docker_save(path, image, repo_tag):
    """Classic `docker save` (Docker < 25): <v1 id>/{VERSION,json,layer.tar} with UNCOMPRESSED
    layers, <config hex>.json, manifest.json and repositories, in lexical order."""
    lbs = [l.build("none") for l in image.layers()]
    cfg = image.copy(docker=True, compression="none").config_blob(lbs)
    cfg_name = cfg.digest.split(":", 1)[1] + ".json"
    items, layer_paths, parent, chain = [], [], "", None
    for i, b in enumerate(lbs):
        chain = b.diff_id if chain is None else \
            "sha256:" + hashlib.sha256(f"{chain} {b.diff_id}".encode()).hexdigest()
        v1 = {"id": "", "created": image.created, "container_config": {"Cmd": None},
              "os": image.os, "architecture": image.arch, "layer_id": chain}
        if parent:
            v1["parent"] = parent
        if i == len(lbs) - 1:
            v1["config"] = image.config
        v1id = hashlib.sha256(jbytes(v1)).hexdigest()
        v1["id"] = v1id
        v1.pop("layer_id")
        items += [(v1id + "/", None), (v1id + "/VERSION", b"1.0"), (v1id + "/json", jbytes(v1)),
                  (v1id + "/layer.tar", ("file", b.tar_path))]
        layer_paths.append(v1id + "/layer.tar")
        parent = v1id
    repo, tag = _repo_tag_parts(repo_tag)
    manifest = [{"Config": cfg_name, "RepoTags": [f"{repo}:{tag}"], "Layers": layer_paths}]
    items += [(cfg_name, cfg.data), ("manifest.json", jbytes(manifest)),
              ("repositories", jbytes({repo: {tag: parent}}))]
    _write_items(path, _sorted_items(items))


def write_docker25_save(path, image, repo_tag):
    """Docker 25+ `docker save`: an OCI layout (uncompressed layer blobs, OCI manifest,
    index.json with containerd/OCI ref annotations) plus the legacy manifest.json whose
    Config/Layers are blobs/sha256/<hex> paths, and repositories."""
    img = image.copy(compression="none", docker=False)
    lbs = img.blobs()
    cfg = img.config_blob(lbs)
    man = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cfg.descriptor(),
           "layers": [{"mediaType": OCI_LAYER["none"], "digest": b.digest, "size": b.size}
                      for b in lbs]}
    mb = Blob(OCI_MANIFEST, jbytes(man))
    repo, tag = _repo_tag_parts(repo_tag)
    first = repo.split("/", 1)[0]
    if "/" in repo and ("." in first or ":" in first or first == "localhost"):
        full = repo
    else:
        full = "docker.io/" + (repo if "/" in repo else "library/" + repo)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
             "manifests": [mb.descriptor(annotations={
                 "io.containerd.image.name": f"{full}:{tag}", REF_NAME: tag})]}
    legacy = [{"Config": "blobs/sha256/" + cfg.digest.split(":", 1)[1],
               "RepoTags": [f"{repo}:{tag}"],
               "Layers": ["blobs/sha256/" + b.digest.split(":", 1)[1] for b in lbs],
               "LayerSources": {b.digest: {"mediaType": OCI_LAYER["none"], "size": b.size,
                                           "digest": b.digest} for b in lbs}}]
    items = [("blobs/", None), ("blobs/sha256/", None)]
    seen = set()
    for b in lbs:
        if b.digest not in seen:
            seen.add(b.digest)
            items.append(("blobs/sha256/" + b.digest.split(":", 1)[1], ("file", b.tar_path)))
    items += [("blobs/sha256/" + cfg.digest.split(":", 1)[1], cfg.data),
              ("blobs/sha256/" + mb.digest.split(":", 1)[1], mb.data),
              ("index.json", jbytes(index)), ("manifest.json", jbytes(legacy)),
              ("oci-layout", jbytes({"imageLayoutVersion": "1.0.0"})),
              ("repositories", jbytes({repo: {tag: lbs[-1].diff_id.split(":", 1)[1]}}))]
    _write_items(path, _sorted_items(items))


def write_oci_archive(path, layout_dir):
    """oci-archive: a tar of an OCI image layout directory (lexical order)."""
    items = []
    for root, dirs, files in os.walk(layout_dir):
        dirs.sort()
        rel = os.path.relpath(root, layout_dir)
        if rel != ".":
            items.append((rel + "/", None))
        for n in sorted(files):
            items.append(((n if rel == "." else rel + "/" + n), ("file", os.path.join(root, n))))
    _write_items(path, _sorted_items(items))


def _write_items(path, items):
    tmp = path + ".tmp"
    t = _TarOut(tmp)
    for name, v in items:
        if v is None:
            t.dir(name)
        elif isinstance(v, tuple):
            t.file(name, v[1])
        else:
            t.data(name, v)
    t.close()
    os.replace(tmp, path)


# --------------------------------------------------------------------------- JSON spec CLI
def layer_from_spec(spec, base_dir="."):
    l = Layer(compression=spec.get("compression", "gzip"), level=spec.get("level", 6))
    for e in spec["entries"]:
        t = e["type"]
        mode = int(str(e["mode"]), 8) if "mode" in e else None
        own = {"uid": e.get("uid", 0), "gid": e.get("gid", 0)}
        if "mtime" in e:
            own["mtime"] = e["mtime"]
        if t == "dir":
            l.dir(e["path"], mode=mode or 0o755, **own)
        elif t == "file":
            src = os.path.join(base_dir, e["src"]) if "src" in e else None
            data = bytes.fromhex(e["hex"]) if "hex" in e else None
            l.file(e["path"], data=data, text=e.get("text"), src=src, mode=mode or 0o644, **own)
        elif t == "symlink":
            l.symlink(e["path"], e["target"], **own)
        elif t == "hardlink":
            l.hardlink(e["path"], e["target"], **own)
        elif t == "whiteout":
            l.whiteout(e["path"])
        elif t == "opaque":
            l.opaque(e["path"])
        elif t == "tree":
            l.tree(e["path"], os.path.join(base_dir, e["src"]))
        else:
            raise SystemExit(f"unknown entry type {t!r}")
    return l


def image_from_spec(spec, base_dir="."):
    img = Image(config=spec.get("config", {}), arch=spec.get("architecture", "amd64"),
                os_=spec.get("os", "linux"), variant=spec.get("variant"),
                created=spec.get("created", CREATED), docker=spec.get("docker", False))
    style = {"buildkit": buildkit, "classic": classic, "raw": lambda s: s}[
        spec.get("history_style", "buildkit")]
    for step in spec["steps"]:
        if "layer" in step:
            img.add(layer_from_spec(step["layer"], base_dir), style(step.get("created_by", "")))
        else:
            img.meta(style(step["empty"]))
    return img


SPEC_EXAMPLE = {
    "architecture": "amd64", "os": "linux", "history_style": "buildkit",
    "config": {"User": "65532", "Env": ["PATH=/usr/bin:/bin"], "Entrypoint": ["/hello"]},
    "steps": [
        {"created_by": "COPY rootfs/ /", "layer": {"compression": "gzip", "entries": [
            {"type": "dir", "path": "etc"},
            {"type": "file", "path": "etc/passwd", "text": "root:x:0:0:root:/root:/sbin/nologin\n"},
            {"type": "file", "path": "hello", "src": "out/bin/app-static", "mode": "0755"},
            {"type": "symlink", "path": "bin", "target": "usr/bin"}]}},
        {"created_by": "RUN rm /etc/passwd", "layer": {"compression": "zstd", "entries": [
            {"type": "whiteout", "path": "etc/passwd"}]}},
        {"empty": "USER 65532"},
    ],
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("spec", help="JSON spec file ('-' for stdin, 'example' prints one)")
    ap.add_argument("--layout", help="write an OCI image layout here")
    ap.add_argument("--tag", default="latest")
    ap.add_argument("--repo-tag", default="imgaudit/image:latest")
    ap.add_argument("--docker-save")
    ap.add_argument("--docker25-save")
    ap.add_argument("--oci-archive")
    a = ap.parse_args(argv)
    if a.spec == "example":
        print(json.dumps(SPEC_EXAMPLE, indent=2))
        return
    spec = json.load(sys.stdin if a.spec == "-" else open(a.spec))
    base = os.path.dirname(os.path.abspath(a.spec)) if a.spec != "-" else "."
    img = image_from_spec(spec, base)
    try:
        if a.layout:
            write_layout(a.layout, {a.tag: img})
        if a.docker_save:
            write_docker_save(a.docker_save, img, a.repo_tag)
        if a.docker25_save:
            write_docker25_save(a.docker25_save, img, a.repo_tag)
        if a.oci_archive:
            if not a.layout:
                raise SystemExit("--oci-archive needs --layout")
            write_oci_archive(a.oci_archive, a.layout)
    finally:
        cleanup()


if __name__ == "__main__":
    main()
