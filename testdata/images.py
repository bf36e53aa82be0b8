#!/usr/bin/env python3
"""Assemble imgaudit's fixture images from the binaries in testdata/out/bin (build.sh).

    images.py [--only NAME,...] fixtures   # out/images/<name>/ (OCI layouts), out/archives/*.tar,
                                           # out/rootfs/clean/
    images.py demo                         # testdata/demo/ (committed, gzip -9)
    images.py large                        # out/images/large (~1 GB, benchmarks)
                                           # and out/images/large-zstd (the same, zstd -3)

Every image is described in PROVENANCE.md; what imgaudit must report on each is written down
once, in expectations.toml (read by crates/audit-core/tests/rules.rs).
Host files that are copied (CA bundle, zoneinfo, glibc, musl loader, busybox, dpkg, apt-get,
make, git and their libraries) come from the Debian 12 build machine.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mkimage as mk  # noqa: E402
from mkimage import Attestation, Image, Index, Layer, buildkit, classic  # noqa: E402

OUT = os.path.join(HERE, "out")
BIN = os.path.join(OUT, "bin")
WORK = os.path.join(OUT, "work")
IMAGES = os.path.join(OUT, "images")
ARCHIVES = os.path.join(OUT, "archives")
DEMO = os.path.join(HERE, "demo")
GOROOT = None  # set in main() from tools.sh

PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SSL_ENV = "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
SOURCE = "https://example.com/imgaudit/app"
NONROOT = 65532


def b(name):
    p = os.path.join(BIN, name)
    if not os.path.exists(p):
        raise SystemExit(f"images.py: {p} missing: run build.sh (make fixtures) first")
    return p


def host(path):
    if not os.path.exists(path):
        raise SystemExit(f"images.py: host file {path} missing (see PROVENANCE.md packages)")
    return path


def pkg_version(pkg, default):
    try:
        v = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True,
                           text=True).stdout.strip()
        return v or default
    except OSError:
        return default


def vcs_revision(binary):
    go = os.path.join(GOROOT, "bin", "go")
    out = subprocess.run([go, "version", "-m", binary], capture_output=True, text=True,
                         env=dict(os.environ, GOTOOLCHAIN="local", GOENV="off")).stdout
    m = re.search(r"vcs\.revision=([0-9a-f]+)", out)
    return m.group(1) if m else "0" * 40


def status_d(pkg, version, arch, maint, size, section, desc, extra=""):
    """A /var/lib/dpkg/status.d/<pkg> stub modelled on a real dpkg status paragraph."""
    return (f"Package: {pkg}\nVersion: {version}\nArchitecture: {arch}\nMaintainer: {maint}\n"
            f"Installed-Size: {size}\n{extra}Section: {section}\nPriority: required\n"
            f"Description: {desc}\n")


# =========================================================================== base layers
def base_files_layer():
    l = Layer()
    for d, mode in [("bin", 0o755), ("boot", 0o755), ("dev", 0o755), ("etc", 0o755),
                    ("home", 0o755), ("lib", 0o755), ("proc", 0o555), ("root", 0o700),
                    ("run", 0o755), ("sbin", 0o755), ("sys", 0o555), ("tmp", 0o1777),
                    ("usr", 0o755), ("usr/bin", 0o755), ("usr/lib", 0o755), ("usr/sbin", 0o755),
                    ("usr/share", 0o755), ("usr/share/doc", 0o755), ("var", 0o755),
                    ("var/cache", 0o755), ("var/lib", 0o755), ("var/lib/dpkg", 0o755),
                    ("var/lib/dpkg/status.d", 0o755), ("var/log", 0o755), ("var/tmp", 0o1777)]:
        l.dir(d, mode=mode)
    l.file("etc/debian_version", text="12.11\n")
    l.file("etc/host.conf", text="multi on\n")
    l.file("etc/issue", text="Debian GNU/Linux 12 \\n \\l\n\n")
    # base-files' relative symlink; the target comes from the os_release layer (distroless
    # overrides base-files' copy; we leave base-files' copy out so that no bytes are wasted
    # and the clean image does not fire FS014).
    l.symlink("etc/os-release", "../usr/lib/os-release")
    l.file("var/lib/dpkg/status.d/base-files", text=status_d(
        "base-files", "12.4+deb12u11", "amd64",
        "Santiago Vila <sanvila@debian.org>", 341, "admin",
        "Debian base system miscellaneous files\n This package contains the basic filesystem "
        "hierarchy of a Debian system, and\n several important miscellaneous files.\n",
        "Provides: base\nEssential: yes\nReplaces: base, dpkg (<= 1.15.0), miscutils\n"))
    return l


def netbase_layer():
    l = Layer()
    l.file("etc/protocols", text=(
        "ip\t0\tIP\t\t# internet protocol, pseudo protocol number\n"
        "icmp\t1\tICMP\t\t# internet control message protocol\n"
        "tcp\t6\tTCP\t\t# transmission control protocol\n"
        "udp\t17\tUDP\t\t# user datagram protocol\n"))
    l.file("etc/services", text=(
        "ssh\t\t22/tcp\t\t\t\t# SSH Remote Login Protocol\n"
        "domain\t\t53/tcp\t\t\t\t# Domain Name Server\n"
        "domain\t\t53/udp\n"
        "http\t\t80/tcp\t\twww\t\t# WorldWideWeb HTTP\n"
        "https\t\t443/tcp\t\t\t\t# http protocol over TLS/SSL\n"))
    l.file("etc/rpc", text="portmapper\t100000\tportmap sunrpc rpcbind\n")
    l.file("var/lib/dpkg/status.d/netbase", text=status_d(
        "netbase", "6.4", "all", "Marco d'Itri <md@linux.it>", 41, "admin",
        "Basic TCP/IP networking system\n This package provides the necessary infrastructure "
        "for basic TCP/IP based\n networking.\n", "Multi-Arch: foreign\n"))
    return l


def tzdata_layer():
    l = Layer()
    l.dirs("usr/share/zoneinfo/Etc", "usr/share/zoneinfo/Europe")
    l.file("usr/share/zoneinfo/Etc/UTC", src=host("/usr/share/zoneinfo/Etc/UTC"))
    if os.path.islink("/usr/share/zoneinfo/UTC"):
        l.symlink("usr/share/zoneinfo/UTC", os.readlink("/usr/share/zoneinfo/UTC"))
    else:
        l.file("usr/share/zoneinfo/UTC", src=host("/usr/share/zoneinfo/UTC"))
    l.file("usr/share/zoneinfo/Europe/Berlin", src=host("/usr/share/zoneinfo/Europe/Berlin"))
    l.dirs("usr/share/doc/tzdata")
    l.file("usr/share/doc/tzdata/copyright", text=(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
        "Upstream-Name: tz\nSource: https://www.iana.org/time-zones\n\nFiles: *\n"
        "Copyright: Arthur David Olson, Paul Eggert and others\nLicense: public-domain\n"))
    l.file("var/lib/dpkg/status.d/tzdata", text=status_d(
        "tzdata", pkg_version("tzdata", "2025b-0+deb12u2"), "all",
        "GNU Libc Maintainers <debian-glibc@lists.debian.org>", 2976, "localization",
        "time zone and daylight-saving time data\n This package contains data required for "
        "the implementation of\n standard local time for many representative locations "
        "around the\n globe.\n",
        "Depends: debconf (>= 0.5) | debconf-2.0\nProvides: tzdata-bookworm\n"
        "Multi-Arch: foreign\nHomepage: https://www.iana.org/time-zones\n"))
    return l


PASSWD = ("root:x:0:0:root:/root:/sbin/nologin\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
          "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")
GROUP = "root:x:0:\nnobody:x:65534:\ntty:x:5:\nstaff:x:50:\nnonroot:x:65532:\n"
NSSWITCH = """# /etc/nsswitch.conf
#
# Example configuration of GNU Name Service Switch functionality.

passwd:         compat
group:          compat
shadow:         compat
gshadow:        files

hosts:          files dns
networks:       files

protocols:      db files
services:       db files
ethers:         db files
rpc:            db files

netgroup:       nis
"""


def users_layer():
    """distroless' passwd, group, home and tmp layers, in one."""
    l = Layer()
    l.dir("etc")
    l.file("etc/passwd", text=PASSWD)
    l.file("etc/group", text=GROUP)
    l.dir("home")
    l.dir("home/nonroot", mode=0o700, uid=NONROOT, gid=NONROOT)
    l.dir("root", mode=0o700)
    l.dir("tmp", mode=0o1777)
    return l


def nsswitch_layer():
    return Layer().dir("etc").file("etc/nsswitch.conf", text=NSSWITCH)


def os_release_layer():
    return Layer().dirs("usr/lib").file("usr/lib/os-release", mode=0o555, text=(
        'PRETTY_NAME="Distroless"\nNAME="Debian GNU/Linux"\nID="debian"\nVERSION_ID="12"\n'
        'VERSION="Debian GNU/Linux 12 (bookworm)"\n'
        'HOME_URL="https://github.com/GoogleContainerTools/distroless"\n'
        'SUPPORT_URL="https://github.com/GoogleContainerTools/distroless/blob/master/README.md"\n'
        'BUG_REPORT_URL="https://github.com/GoogleContainerTools/distroless/issues/new"\n'))


def cacerts_layer():
    l = Layer()
    l.dirs("etc/ssl/certs", "usr/share/doc/ca-certificates")
    l.file("etc/ssl/certs/ca-certificates.crt", mode=0o555,
           src=host("/etc/ssl/certs/ca-certificates.crt"))
    l.file("usr/share/doc/ca-certificates/copyright", text=(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
        "Source: https://tracker.debian.org/pkg/ca-certificates\n\nFiles: *\n"
        "Copyright: 2003 Fumitoshi UKAI <ukai@debian.or.jp>\nLicense: GPL-2+\n"))
    l.file("var/lib/dpkg/status.d/ca-certificates", text=status_d(
        "ca-certificates", pkg_version("ca-certificates", "20230311+deb12u1"), "all",
        "Julien Cristau <jcristau@debian.org>", 388, "misc",
        "Common CA certificates\n Contains the certificate authorities shipped with Mozilla's "
        "browser to allow\n SSL-based applications to check for the authenticity of SSL "
        "connections.\n", "Depends: openssl (>= 1.1.1), debconf (>= 0.5) | debconf-2.0\n"
        "Multi-Arch: foreign\n"))
    return l


class Base:
    """The distroless-static-style base layers, built once and shared by many images."""

    def __init__(self):
        self.base_files = base_files_layer()
        self.netbase = netbase_layer()
        self.tzdata = tzdata_layer()
        self.users = users_layer()
        self.nsswitch = nsswitch_layer()
        self.os_release = os_release_layer()
        self.cacerts = cacerts_layer()

    def steps(self, img, ca=True, tz=True):
        img.add(self.base_files, buildkit("COPY base-files/ /"))
        img.add(self.netbase, buildkit("COPY netbase/ /"))
        if tz:
            img.add(self.tzdata, buildkit("COPY tzdata/ /"))
        img.add(self.users, buildkit("COPY passwd group home tmp /"))
        img.add(self.nsswitch, buildkit("COPY nsswitch.conf /etc/nsswitch.conf"))
        img.add(self.os_release, buildkit("COPY os-release /usr/lib/os-release"))
        if ca:
            img.add(self.cacerts, buildkit("COPY ca-certificates.crt /etc/ssl/certs/"))
        return img


def nonroot_config(entrypoint=("/app",), labels=None, env=(PATH_ENV, SSL_ENV), cmd=None,
                   user=str(NONROOT), workdir="/home/nonroot"):
    c = {}
    if user is not None:
        c["User"] = user
    if env is not None:
        c["Env"] = list(env)
    if entrypoint is not None:
        c["Entrypoint"] = list(entrypoint)
    if cmd is not None:
        c["Cmd"] = list(cmd)
    if workdir:
        c["WorkingDir"] = workdir
    if labels:
        c["Labels"] = dict(labels)
    return c


def labels(revision, version="v1.0.0"):
    return {"org.opencontainers.image.revision": revision,
            "org.opencontainers.image.source": SOURCE,
            "org.opencontainers.image.version": version}


def meta_steps(img, cfg):
    """Empty-layer history entries (BuildKit form) matching a config."""
    if "User" in cfg and cfg["User"]:
        img.meta(f"USER {cfg['User']}")
    for e in cfg.get("Env", []):
        img.meta(f"ENV {e}")
    if cfg.get("WorkingDir"):
        img.meta(f"WORKDIR {cfg['WorkingDir']}")


def tail_steps(img, cfg):
    if "Entrypoint" in cfg:
        img.meta("ENTRYPOINT " + json.dumps(cfg["Entrypoint"]))
    if "Cmd" in cfg:
        img.meta("CMD " + json.dumps(cfg["Cmd"]))
    if cfg.get("Labels"):
        img.meta("LABEL " + " ".join(f"{k}={v}" for k, v in cfg["Labels"].items()))


def app_layer(binary, path="app"):
    return Layer().file(path, src=binary, mode=0o755)


# =========================================================================== images
def build_clean(base, rev, arch_binary=None, arch="amd64", variant=None):
    cfg = nonroot_config(labels=labels(rev))
    img = Image(config=cfg, arch=arch, variant=variant)
    base.steps(img)
    meta_steps(img, cfg)
    img.add(app_layer(arch_binary or b("app-static")), buildkit("COPY /out/app /app"))
    tail_steps(img, cfg)
    return img


def with_steps(base, cfg, layers, ca=True, tz=True, arch="amd64"):
    """Image = base layers + meta + (layer, created_by)... + tail."""
    img = Image(config=cfg, arch=arch)
    base.steps(img, ca=ca, tz=tz)
    meta_steps(img, cfg)
    for layer, created_by in layers:
        img.add(layer, created_by)
    tail_steps(img, cfg)
    return img


def glibc_layer(libc_src):
    l = Layer()
    l.dirs("lib/x86_64-linux-gnu", "lib64", "etc/ld.so.conf.d", "var/lib/dpkg/status.d")
    l.file("lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", mode=0o755,
           src=host("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"))
    l.file("lib/x86_64-linux-gnu/libc.so.6", mode=0o755, src=libc_src)
    # Debian 12's libc6: an ABSOLUTE symlink.
    l.symlink("lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    l.file("etc/ld.so.conf.d/x86_64-linux-gnu.conf",
           text="# Multiarch support\n/usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n"
                "/usr/lib/x86_64-linux-gnu\n")
    return l


def libc6_status(version):
    return Layer().dirs("var/lib/dpkg/status.d").file("var/lib/dpkg/status.d/libc6",
                                                       text=status_d(
        "libc6", version, "amd64", "GNU Libc Maintainers <debian-glibc@lists.debian.org>",
        12991, "libs", "GNU C Library: Shared libraries\n Contains the standard libraries "
        "that are used by nearly all programs on\n the system.\n",
        "Depends: libgcc-s1\nProvides: libc6-x86-64\nMulti-Arch: same\n"))


GO_VARIANTS = ["app-cgo-glibc", "app-cgo-musl", "app-pie", "app-go119", "app-dirty", "app-race",
               "app-replace", "app-unstripped", "app-nobuildinfo", "app-arm64"]


def host_lib_closure(binaries):
    """Libraries the host's dynamic loader resolves for `binaries` (from ldd)."""
    libs = {}
    for bpath in binaries:
        out = subprocess.run(["ldd", bpath], capture_output=True, text=True).stdout
        for line in out.splitlines():
            m = re.match(r"\s*(\S+) => (/\S+)", line)
            if m:
                libs[m.group(1)] = os.path.realpath(m.group(2))
    return dict(sorted(libs.items()))


def gocache_subset(src, budget=3 << 20):
    """README + trim.txt + the first cache entries (sorted) up to `budget` bytes."""
    picked = []
    total = 0
    for root, dirs, files in os.walk(src):
        dirs.sort()
        for n in sorted(files):
            p = os.path.join(root, n)
            rel = os.path.relpath(p, src)
            if rel in ("README", "trim.txt"):
                continue
            sz = os.path.getsize(p)
            if total + sz > budget:
                continue
            total += sz
            picked.append(rel)
    return picked


def build_fs_rules(base, rev):
    cfg = nonroot_config(labels=labels(rev), env=[PATH_ENV])  # no SSL_CERT_FILE either
    layers = []
    # busybox with applet links: shell (FS001) and network tools (FS009).
    bb = Layer()
    bb.dirs("bin")
    bb.file("bin/busybox", src=host("/bin/busybox"), mode=0o755)
    for applet in ["sh", "ash", "ls", "cat", "wget", "nc", "vi"]:
        bb.symlink(f"bin/{applet}", "busybox")
    layers.append((bb, buildkit("COPY /bin/busybox /bin/busybox")))
    # Real Debian binaries and the glibc they need, so only the FS rules fire for them.
    tools = {"usr/bin/dpkg": "/usr/bin/dpkg", "usr/bin/apt-get": "/usr/bin/apt-get",
             "usr/bin/make": "/usr/bin/make", "usr/bin/git": "/usr/bin/git"}
    libs = host_lib_closure([host(p) for p in tools.values()])
    lib = glibc_layer(host("/lib/x86_64-linux-gnu/libc.so.6"))
    for soname, real in libs.items():
        if soname in ("libc.so.6",):
            continue
        lib.file(f"lib/x86_64-linux-gnu/{soname}", src=real, mode=0o644)
    layers.append((lib, buildkit("COPY libs/ /lib/")))
    lay = Layer()
    lay.dirs("usr/bin", "var/lib/dpkg")
    for dest, src in tools.items():
        lay.file(dest, src=src, mode=0o755)
    lay.hardlink("usr/bin/gmake", "usr/bin/make", mode=0o755)
    lay.file("var/lib/dpkg/status", text="Package: dpkg\nStatus: install ok installed\n"
             "Version: " + pkg_version("dpkg", "1.21.22") + "\nArchitecture: amd64\n")
    layers.append((lay, buildkit("RUN apt-get install -y --no-install-recommends make git")))
    # A Go toolchain tree (FS003).
    gl = Layer()
    gl.dirs("usr/local/go/bin", "usr/local/go/pkg/tool/linux_amd64", "usr/local/go/src/fmt",
            "usr/local/go/src/runtime")
    gl.file("usr/local/go/VERSION", src=os.path.join(GOROOT, "VERSION"))
    gl.file("usr/local/go/go.env", src=os.path.join(GOROOT, "go.env"))
    gl.file("usr/local/go/bin/go", src=os.path.join(GOROOT, "bin/go"), mode=0o755)
    gl.file("usr/local/go/bin/gofmt", src=os.path.join(GOROOT, "bin/gofmt"), mode=0o755)
    gl.file("usr/local/go/pkg/tool/linux_amd64/preprofile",
            src=os.path.join(GOROOT, "pkg/tool/linux_amd64/preprofile"), mode=0o755)
    for f in ["src/fmt/doc.go", "src/fmt/print.go", "src/runtime/extern.go"]:
        gl.file("usr/local/go/" + f, src=os.path.join(GOROOT, f))
    layers.append((gl, buildkit("COPY /usr/local/go /usr/local/go")))
    # Module cache (FS004), build cache (FS005), go-installed tool (FS006): /root/go, /root/.cache.
    mc = Layer()
    mc.dirs("root/go/pkg")
    mc.tree("root/go/pkg/mod", os.path.join(WORK, "modcache"))
    gc = os.path.join(WORK, "gocache")
    mc.dirs("root/.cache/go-build")
    mc.file("root/.cache/go-build/README", src=os.path.join(gc, "README"))
    mc.file("root/.cache/go-build/trim.txt", text=f"{mk.EPOCH}\n")  # real one holds a clock time
    seen = set()
    for rel in gocache_subset(gc):
        d = os.path.dirname(rel)
        if d not in seen:
            seen.add(d)
            mc.dir(f"root/.cache/go-build/{d}", mode=0o755)
        if rel.endswith("-a"):
            # action entries end with the time of the build ("v1 <id> <out> <size> <ns>\n");
            # pin it so the layer is reproducible
            with open(os.path.join(gc, rel), "rb") as f:
                data = re.sub(rb" +\d+\n$", b" " + b"%20d" % (mk.EPOCH * 10**9) + b"\n", f.read())
            mc.file(f"root/.cache/go-build/{rel}", data=data)
        else:
            mc.file(f"root/.cache/go-build/{rel}", src=os.path.join(gc, rel))
    mc.dirs("root/go/bin")
    mc.file("root/go/bin/tool", src=b("tool"), mode=0o755)
    layers.append((mc, buildkit("RUN go mod download && go build ./... && "
                                "go install example.com/tool@v0.3.0")))
    # Sources with go.mod/go.sum and .git/ (FS007); the git index (stat data) is left out.
    src = Layer()
    src.dirs("src")
    src.tree("src/app", os.path.join(WORK, "src-app"), skip=("index", "hooks", "FETCH_HEAD"))
    layers.append((src, buildkit("COPY . /src/app")))
    # setuid / setgid (FS012), world-writable file and 0777 dir without sticky bit (FS013).
    perm = Layer()
    perm.dirs("usr/local/bin", "var/log/app", "srv")
    perm.file("usr/local/bin/suid-helper", src=b("hello-c-glibc"), mode=0o4755)
    perm.file("usr/local/bin/sgid-helper", src=b("hello-c-glibc"), mode=0o2755, gid=42)
    perm.file("var/log/app/shared.log", text="", mode=0o666)
    perm.dir("srv/upload", mode=0o777)
    layers.append((perm, buildkit("RUN chmod 4755 /usr/local/bin/suid-helper && "
                                  "chmod 2755 /usr/local/bin/sgid-helper && "
                                  "chmod 0777 /srv/upload")))
    # Wasted bytes (FS014): a 2 MiB file removed later, a file overwritten later, and an
    # opaque directory hiding lower files.
    big = bytearray()
    seed = b"imgaudit-fs014"
    import hashlib
    while len(big) < 2 << 20:
        seed = hashlib.sha256(seed).digest()
        big += seed
    w1 = Layer()
    w1.dirs("opt/data", "opt/cache", "etc/app")
    w1.file("opt/data/dataset.bin", data=bytes(big[:2 << 20]))
    w1.file("opt/cache/a.txt", text="cached a\n" * 1000)
    w1.file("opt/cache/b.txt", text="cached b\n" * 1000)
    w1.file("etc/app/config.json", text=json.dumps({"debug": True, "pad": "x" * 4000}) + "\n")
    layers.append((w1, buildkit("COPY data/ /opt/")))
    w2 = Layer()
    w2.dirs("opt/data", "opt/cache", "etc/app")
    w2.whiteout("opt/data/dataset.bin")
    w2.opaque("opt/cache")
    w2.file("opt/cache/c.txt", text="fresh\n")
    w2.file("etc/app/config.json", text='{"debug":false}\n')
    layers.append((w2, buildkit("RUN rm /opt/data/dataset.bin && rm -rf /opt/cache/* && "
                                "echo fresh > /opt/cache/c.txt && "
                                "echo '{\"debug\":false}' > /etc/app/config.json")))
    # The app (links crypto/tls, calls time.LoadLocation) but no CA bundle, no zoneinfo.
    layers.append((app_layer(b("app-static")), buildkit("COPY /out/app /app")))
    return with_steps(base, cfg, layers, ca=False, tz=False)


# =========================================================================== SEC / HIST
# Fake credentials for the SEC fixtures. They have the real formats (so imgaudit and trivy
# recognise them) but were never issued by anyone. They are assembled here from pieces so
# that this source file does not itself carry token-shaped strings (push protection, other
# scanners). None contains "EXAMPLE": trivy skips such values.
FAKE = {
    "github": "ghp_" + "R8q7P6o5N4m3L2k1" + "J0i9H8g7F6e5D4c3B2a1",
    "github2": "ghp_" + "Zz9Yy8Xx7Ww6Vv5U" + "u4Tt3Ss2Rr1Qq0Pp9Oo8",
    "gitlab": "glpat-" + "Xy3zW8vU5t" + "S2rQ9pO6nM",
    "aws_id": "AKIA" + "Q3EGRT5W" + "XZ2YBN7K",
    "aws_secret": "Zq8rT2vX9pL4mN6b" + "C1dF3gH5/sW0eR2tY4uI6oP8",
    "npm": "npm_" + "Xq9LrT2mV8bN4cK7dF1g" + "H3jW5sZ0aE6yU2iO",
    "pypi": "pypi-" + "AgEIcHlwaS5vcmc" + "CJGQ4ZTdlYmYtMzY1Zi00NGNjLWE0ZjMtNWQ4ZjcwYWI2ZTAxAAIqWzMsImY0",
    "password": "s3cr3t-" + "Pa55w0rd-42",
    "registry_password": "r3g-" + "Pa55-w0rd-7731",
    "proxy_token": "tok3n-" + "Va1ue-9931-xq",
    "db_password": "hunter2-" + "hunter2",
}


def fake_openssh_key():
    """An OpenSSH private key file: the real header and line layout, a deterministic body
    (openssh-key-v1 magic, then sha256-chain bytes). Not a usable key."""
    import base64
    import hashlib
    raw = b"openssh-key-v1\0\0\0\0\x04none\0\0\0\x04none"
    seed = b"imgaudit-sec001"
    while len(raw) < 400:
        seed = hashlib.sha256(seed).digest()
        raw += seed
    body = base64.b64encode(raw).decode()
    lines = [body[i:i + 70] for i in range(0, len(body), 70)]
    return ("-----BEGIN OPENSSH " + "PRIVATE KEY-----\n" + "\n".join(lines) +
            "\n-----END OPENSSH " + "PRIVATE KEY-----\n")


def docker_auth(user, password):
    import base64
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def build_sec_rules(base, rev):
    """SEC001-SEC004: credential files (some deleted or replaced by a later layer), secrets
    in Env, in build arguments / ARG defaults / overridden ENV of the history, and Go module
    settings that turn off verification."""
    f = FAKE
    env = [PATH_ENV, SSL_ENV,
           f"GOPROXY=https://ci-bot:{f['proxy_token']}@proxy.example.com,direct",
           f"GITHUB_TOKEN={f['github']}",
           "GOSUMDB=off", "GOINSECURE=git.example.com",
           # near misses, must not fire: public material, a pointer to a secret, empty and
           # placeholder values
           "GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D",
           "TLS_KEY_FILE=/run/secrets/tls.key", "API_KEY=", "SESSION_SECRET=changeme",
           "NPM_TOKEN="]
    lab = dict(labels(rev), **{"org.example.ci-token": f["github2"]})
    cfg = nonroot_config(labels=lab, env=env)
    img = Image(config=cfg)
    base.steps(img)
    img.meta(f"ARG DB_PASSWORD={f['db_password']}")
    img.meta(f"ENV NPM_TOKEN={f['npm']}")
    meta_steps(img, cfg)   # ... ENV NPM_TOKEN= (overrides the one above)
    img.add(app_layer(b("app-static")), buildkit("COPY /out/app /app"))
    creds = Layer()
    creds.dirs("root/.docker", "root/.ssh", "root/.aws", "srv/app/config")
    creds.dir("root", mode=0o700)
    creds.file("root/.netrc", mode=0o600, text=(
        f"machine git.example.com\n  login ci-bot\n  password {f['password']}\n"))
    creds.file("root/.docker/config.json", mode=0o600, text=json.dumps(
        {"auths": {"registry.example.com": {"auth": docker_auth("ci-bot", f["registry_password"])}}},
        indent="\t") + "\n")
    creds.file("root/.ssh/id_ed25519", mode=0o600, text=fake_openssh_key())
    creds.file("root/.aws/credentials", mode=0o600, text=(
        f"[default]\naws_access_key_id = {f['aws_id']}\n"
        f"aws_secret_access_key = {f['aws_secret']}\nregion = eu-west-1\n"))
    creds.file("root/.npmrc", mode=0o600, text=(
        f"registry=https://npm.example.com/\n//npm.example.com/:_authToken={f['npm']}\n"))
    creds.file("root/.pypirc", mode=0o600, text=(
        f"[distutils]\nindex-servers = pypi\n\n[pypi]\nusername = __token__\n"
        f"password = {f['pypi']}\n"))
    creds.file("root/.git-credentials", mode=0o600, text=(
        f"https://ci-bot:{f['password']}@git.example.com\n"))
    creds.file("srv/app/.env", text=(
        f"# app settings\nLOG_LEVEL=debug\nDB_PASSWORD={f['db_password']}\n"
        f"GITLAB_TOKEN={f['gitlab']}\n"))
    creds.file("srv/app/config/settings.yaml", text=(
        f"server:\n  port: 8080\ngithub:\n  token: {f['github2']}\n"))
    img.add(creds, buildkit("COPY creds/ /"))
    # The classic mistake: "remove" the secrets in a later step. They stay in the layer above.
    rm = Layer()
    rm.dir("root", mode=0o700)
    rm.dirs("srv/app")
    rm.whiteout("root/.netrc")
    rm.whiteout("srv/app/.env")
    rm.file("root/.git-credentials", mode=0o600, text="")
    img.add(rm, buildkit(
        f"RUN |2 GITHUB_TOKEN={f['github']} GO_VERSION=1.27.3 /bin/sh -c "
        "rm /root/.netrc /srv/app/.env && : > /root/.git-credentials"))
    tail_steps(img, cfg)
    return img


def build_sec_decoys(base, rev):
    """Near misses of every SEC rule; the image must stay silent (the clean base plus files
    and settings that name secrets without holding one)."""
    f = FAKE
    env = [PATH_ENV, SSL_ENV, "GPG_KEY=A035C8C19219BA821ECEA86B64E628F8D684696D",
           "TLS_KEY_FILE=/run/secrets/tls.key", "API_KEY=", "SESSION_SECRET=changeme",
           "DATABASE_URL=postgres://app:${DB_PASSWORD}@db:5432/app",
           "GOPRIVATE=git.example.com/*", "GOPROXY=https://proxy.golang.org,direct",
           "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE"]
    cfg = nonroot_config(labels=labels(rev), env=env)
    img = Image(config=cfg)
    base.steps(img)
    img.meta("ARG GITHUB_TOKEN")
    meta_steps(img, cfg)
    img.add(app_layer(b("app-static")), buildkit("COPY /out/app /app"))
    d = Layer()
    d.dirs("srv/app/docs", "srv/app/testdata", "root/.docker", "usr/share/doc/app")
    d.file("srv/app/.env.example", text=(
        "DB_PASSWORD=changeme\nGITHUB_TOKEN=ghp_" + "x" * 36 + "\nAPI_KEY=<your-api-key>\n"))
    d.file("srv/app/docs/aws.md.txt", text=(
        "Configure the CLI:\n  aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
        "  aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"))
    d.file("srv/app/credentials.json", text='{"type": "authorized_user", "refresh_token": ""}\n')
    d.file("srv/app/docs/keys.txt", text=(
        "Paste a key that starts with -----BEGIN OPENSSH " + "PRIVATE KEY----- here.\n"
        "The password is read from $DB_PASSWORD.\n"))
    d.file("root/.docker/config.json", text='{"auths": {"registry.example.com": {}}, '
           '"credsStore": "desktop"}\n')
    d.file("root/.netrc", text="machine git.example.com login ci password ${NETRC_PASSWORD}\n")
    d.file("srv/app/testdata/id_ed25519", text=fake_openssh_key())
    d.file("usr/share/doc/app/README", text=f"token: {f['github']}\n")
    img.add(d, buildkit("COPY docs/ /"))
    tail_steps(img, cfg)
    return img


def build_hist_rules(base, rev):
    """HIST001-HIST007 in BuildKit history form, each next to a near miss that must not
    fire. Layers hold small marker files only, so no FS rule fires."""
    cfg = nonroot_config(labels=labels(rev))
    img = Image(config=cfg)
    base.steps(img)
    meta_steps(img, cfg)

    def mark(name, text="x\n"):
        return Layer().dirs("var/log/build").file(f"var/log/build/{name}", text=text)

    def run(cmd, name, build_args=""):
        img.add(mark(name), buildkit(f"RUN {build_args}/bin/sh -c {cmd}"))

    run("apt-get update && apt-get install -y --no-install-recommends golang-go ca-certificates",
        "01-apt")                                                          # HIST001
    run("apt-get install -y golang-github-pkg-errors-dev && echo golang-go", "02-apt-lib")  # no
    run("curl -fsSL https://go.dev/dl/go1.22.5.linux-amd64.tar.gz | tar -C /usr/local -xz",
        "03-curl-tar")                                                     # HIST002
    run('curl -fsSLo /tmp/go.tgz https://go.dev/dl/go1.22.5.linux-amd64.tar.gz && echo '
        '"904b924d435eaea086515bc63235b192ea441bd8c9b198c507e85009e6e4c7f0  /tmp/go.tgz" | '
        'sha256sum -c - && tar -C /opt -xzf /tmp/go.tgz && rm /tmp/go.tgz', "04-verified")  # no
    run("wget -qO- http://get.example.com/install.sh | sh", "05-wget-sh")    # HIST002
    run('GO_VERSION=$(curl -fsSL "https://go.dev/VERSION?m=text" | head -n1) && curl -fsSLo '
        '/tmp/go.tgz "https://go.dev/dl/${GO_VERSION}.linux-amd64.tar.gz" && echo '
        '"${GO_SHA256}  /tmp/go.tgz" | sha256sum -c -', "06-version",
        build_args="|1 GO_SHA256=904b924d435eaea086515bc63235b192ea441bd8c9b198c507e85009e6e4c7f0 ")
    # HIST003 (verified, so not HIST002)
    img.meta("ENV GOPATH=/go")                                             # HIST006
    img.meta("ENV GOCACHE=/build/cache")                                   # no
    img.add(Layer().dir("src"), buildkit("WORKDIR /src"))
    src = Layer()
    src.dirs("src")
    src.file("src/go.mod", text="module example.com/app\n\ngo 1.27\n")
    src.file("src/main.go", text="package main\n\nfunc main() {}\n")
    img.add(src, buildkit("COPY . ."))                                     # HIST005 ...
    run("go mod download && go build -o /app . && "
        "go install golang.org/x/tools/cmd/goimports@latest", "10-go")     # ... HIST004 HIST003
    img.add(Layer().dirs("opt").file("opt/tool.tgz", data=b"\x1f\x8b\x08\x00" + b"\0" * 20),
            buildkit("ADD https://example.com/tool.tgz /opt/"))            # HIST007
    img.add(Layer().dirs("opt").file("opt/tool2.tgz", data=b"\x1f\x8b\x08\x00" + b"\1" * 20),
            buildkit("ADD --checksum=sha256:24454f1b3c2f9ec5e8b2ab8a7e4f1f1b5b2c0e6a1c79d32cd6a7"
                     "b2e1d2f3a4b5 https://example.com/tool2.tgz /opt/"))  # no
    rm = Layer()
    rm.whiteout("src")
    img.add(rm, buildkit("RUN /bin/sh -c rm -rf /src"))
    run('echo "curl https://x | sh is how not to install" > /dev/null', "14-echo")  # no
    img.add(app_layer(b("app-static")), buildkit("COPY /out/app /app"))
    tail_steps(img, cfg)
    return img


def busybox_base_layer():
    """A 'too-fat' busybox base: the static busybox and the usual applet links."""
    l = Layer(level=9)
    l.dirs("bin", "etc", "root", "tmp", "usr/bin", "var")
    l.dir("tmp", mode=0o1777)
    l.dir("root", mode=0o700)
    l.file("bin/busybox", src=host("/bin/busybox"), mode=0o755)
    for applet in ["sh", "ash", "cat", "cp", "env", "ls", "mkdir", "mv", "nc", "ps", "rm",
                   "sleep", "tar", "vi", "wget"]:
        l.symlink(f"bin/{applet}", "busybox")
    l.file("etc/passwd", text="root:x:0:0:root:/root:/bin/sh\n"
           "nobody:x:65534:65534:nobody:/home:/bin/false\n")
    l.file("etc/group", text="root:x:0:\nnogroup:x:65534:\n")
    return l


def build_demo():
    bb = busybox_base_layer()
    app = Layer(level=9).file("app", src=b("app-demo"), mode=0o755)
    cfg = {"Env": [PATH_ENV], "Entrypoint": ["/app"], "WorkingDir": "/"}
    img = Image(config=cfg)
    img.add(bb, "/bin/sh -c #(nop) ADD file:5b1e63a3cb041177995c9bd1e3dd4c1b4e4b6b0b61e3d1f9f8a9c1d"
                "0a3c1e2f3 in / ")
    img.meta('/bin/sh -c #(nop)  CMD ["sh"]')
    img.meta("WORKDIR /")
    img.add(app, buildkit("COPY /src/app/app /app"))
    img.meta('ENTRYPOINT ["/app"]')
    return img


# =========================================================================== DL fixtures
def dpkg_status_d(pkg):
    """The host's real dpkg status paragraph of `pkg`, as distroless writes it into
    /var/lib/dpkg/status.d/<pkg> (no Status field: everything there is installed)."""
    out = subprocess.run(["dpkg-query", "-s", pkg], capture_output=True, text=True,
                         check=True).stdout
    keep = [l for l in out.splitlines() if not l.startswith(("Status:", "Conffiles:"))
            and not l.startswith(" /")]
    return "\n".join(keep) + "\n"


def debian_libs_layer(pkgs):
    """The shared objects (and their symlinks) of Debian 12 packages from the host, unpacked
    the way distroless does (data only, no maintainer scripts), plus status.d metadata."""
    l = Layer()
    l.dirs("var/lib/dpkg/status.d")
    seen = set()
    for pkg in pkgs:
        files = subprocess.run(["dpkg-query", "-L", pkg], capture_output=True, text=True,
                               check=True).stdout.split()
        for f in sorted(files):
            if "/share/" in f or "/gconv/" in f or not re.search(r"\.so(\.|$)", f):
                continue
            rel = f.lstrip("/")
            if rel in seen:
                continue
            seen.add(rel)
            l.dirs(os.path.dirname(rel))
            if os.path.islink(f):
                l.symlink(rel, os.readlink(f))
            elif os.path.isfile(f):
                l.file(rel, src=f, mode=0o755 if "ld-linux" in f or "/libc.so" in f else 0o644)
        l.file(f"var/lib/dpkg/status.d/{pkg}", text=dpkg_status_d(pkg))
    return l


LIBC_PKGS = ["libc6", "libssl3"]
CC_PKGS = ["libgcc-s1", "libstdc++6", "libgomp1", "gcc-12-base"]


def build_dl_static_gaps(base, rev):
    """Meant to be distroless static:nonroot, but: no CA bundle, no tzdata, no nonroot user
    or group, /tmp without the sticky bit, runs as root, no SSL_CERT_FILE (DL001)."""
    cfg = nonroot_config(labels=labels(rev), env=[PATH_ENV], user="0", workdir="/")
    fix = Layer()
    fix.dirs("etc")
    fix.file("etc/passwd", text="root:x:0:0:root:/root:/sbin/nologin\n"
             "nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n")
    fix.file("etc/group", text="root:x:0:\nnobody:x:65534:\n")
    fix.dir("tmp", mode=0o755)
    return with_steps(base, cfg, [
        (fix, buildkit("COPY passwd group /etc/")),
        (app_layer(b("app-static")), buildkit("COPY /out/app /app"))], ca=False, tz=False)


def build_dl_extra(base, rev):
    """Clean static:nonroot content plus what distroless does not have: a busybox shell
    (DL002 via FS001) and 2 MiB of apt lists and locales (DL003)."""
    cfg = nonroot_config(labels=labels(rev))
    bb = Layer()
    bb.dirs("bin")
    bb.file("bin/busybox", src=host("/bin/busybox"), mode=0o755)
    for applet in ["sh", "ls", "cat"]:
        bb.symlink(f"bin/{applet}", "busybox")
    junk = Layer()
    junk.dirs("var/lib/apt/lists", "usr/share/locale/de/LC_MESSAGES")
    import hashlib
    blob, seed = bytearray(), b"imgaudit-dl003"
    while len(blob) < 3 << 20:
        seed = hashlib.sha256(seed).digest()
        blob += seed.hex().encode()
    junk.file("var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages",
              data=bytes(blob[:2 << 20]))
    junk.file("usr/share/locale/de/LC_MESSAGES/coreutils.mo", data=bytes(blob[2 << 20:(2 << 20) + (512 << 10)]))
    return with_steps(base, cfg, [
        (bb, buildkit("COPY --from=busybox:1.36 /bin/busybox /bin/busybox")),
        (junk, buildkit("RUN apt-get update && apt-get install -y --no-install-recommends locales")),
        (app_layer(b("app-static")), buildkit("COPY /out/app /app"))])


def build_dl_base(base, rev, cc=False):
    """distroless base-debian12:nonroot (cc-debian12:nonroot with cc=True) from the host's real
    Debian 12 libc6 and libssl3 (and libgcc-s1, libstdc++6, libgomp1) with their status.d
    metadata, running a cgo Go binary (and a C program that needs libstdc++/libgcc_s)."""
    cfg = nonroot_config(labels=labels(rev))
    libs = debian_libs_layer(LIBC_PKGS)
    libs.dirs("etc/ld.so.conf.d")
    libs.file("etc/ld.so.conf.d/x86_64-linux-gnu.conf",
              text="# Multiarch support\n/usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n"
                   "/usr/lib/x86_64-linux-gnu\n")
    steps = [(libs, buildkit("COPY libc6/ libssl3/ /"))]
    apps = Layer()
    apps.file("app", src=b("app-cgo-glibc"), mode=0o755)
    if cc:
        steps.append((debian_libs_layer(CC_PKGS), buildkit("COPY libgcc-s1/ libstdc++6/ libgomp1/ /")))
        apps.dirs("usr/local/bin")
        apps.file("usr/local/bin/hello-c-cc", src=b("hello-c-cc"), mode=0o755)
    steps.append((apps, buildkit("COPY /out/ /")))
    return with_steps(base, cfg, steps)


GO119_LIB, GO119_SHARE = "/usr/lib/go-1.19", "/usr/share/go-1.19"
# ELF test data of Go's own sources, copied with an execute bit as controls.
GO119_FREEBSD_EXEC = GO119_SHARE + "/src/debug/elf/testdata/gcc-386-freebsd-exec"
GO119_EMPTY_INTERP = GO119_SHARE + "/src/debug/elf/testdata/go-relocation-test-gcc930-ranges-no-rela-x86-64"


def build_go_toolchain_debian(base, rev):
    """Debian's Go 1.19 toolchain as `golang-1.19-go` installs it (/usr/lib/go-1.19 with its
    symlinks into /usr/share/go-1.19, modes kept) on a glibc base: the ELF test data under
    src/**/testdata (mode 0644, FreeBSD, i386, PowerPC, an empty PT_INTERP) must not be judged
    by whether it starts. Two controls with an execute bit: the empty-PT_INTERP file (cannot
    start: ENOEXEC) and, in the `foreign-entrypoint` tag, the FreeBSD executable as the
    command. Returns {tag: image}."""
    libc = glibc_layer(host("/lib/x86_64-linux-gnu/libc.so.6"))
    st = libc6_status(pkg_version("libc6", "2.36-9+deb12u10"))
    tc = Layer(compression="zstd", level=3)
    tc.dirs("usr/bin", "usr/lib", "usr/share")
    tc.tree("usr/lib/go-1.19", host(GO119_LIB))
    tc.tree("usr/share/go-1.19", host(GO119_SHARE))
    tc.symlink("usr/bin/go", "../lib/go-1.19/bin/go")
    tc.symlink("usr/bin/gofmt", "../lib/go-1.19/bin/gofmt")
    ctl = Layer()
    ctl.dirs("usr/local/bin")
    ctl.file("usr/local/bin/empty-interp", src=host(GO119_EMPTY_INTERP), mode=0o755)
    ctl.file("usr/local/bin/freebsd-tool", src=host(GO119_FREEBSD_EXEC), mode=0o755)
    out = {}
    for tag, entry in [("latest", ["/usr/bin/go"]),
                       ("foreign-entrypoint", ["/usr/local/bin/freebsd-tool"])]:
        cfg = nonroot_config(entrypoint=entry, cmd=["version"], labels=labels(rev),
                             user="0", workdir="/")
        out[tag] = with_steps(base, cfg, [
            (libc, buildkit("COPY --from=debian:12 /lib/x86_64-linux-gnu/libc.so.6 /lib64/ld-linux-x86-64.so.2 /")),
            (st, buildkit("COPY status.d/libc6 /var/lib/dpkg/status.d/")),
            (tc, classic("apt-get install -y golang-1.19-go")),
            (ctl, buildkit("COPY controls/ /usr/local/bin/"))])
    return out


# =========================================================================== drivers
def skopeo(*args):
    subprocess.run(["skopeo", "--insecure-policy", *args], check=True, stdout=subprocess.DEVNULL)


def fixtures(only=None):
    os.makedirs(IMAGES, exist_ok=True)
    os.makedirs(ARCHIVES, exist_ok=True)
    base = Base()
    rev = vcs_revision(b("app-static"))
    want = (lambda n: True) if not only else (lambda n: n in only)
    built = []

    def layout(name, refs=None, flat=None):
        if want(name):
            mk.write_layout(os.path.join(IMAGES, name), refs or {}, flat_index=flat)
            built.append(name)
            print(f"images/{name}", flush=True)

    clean = build_clean(base, rev)
    layout("clean", {"latest": clean})

    # --- format variants of clean
    layout("clean-zstd", {"latest": clean.copy(compression="zstd", level=9)})
    layout("clean-v2s2", {"latest": clean.copy(docker=True)})
    # per-layer compression: gzip, zstd, none, gzip, ... (layer clones share the entries)
    mixed = clean.copy()
    mixed.steps, n = [], 0
    for l, h in clean.steps:
        if l is not None:
            c = Layer(compression=["gzip", "zstd", "none"][n % 3])
            c.entries, n = l.entries, n + 1
            l = c
        mixed.steps.append((l, h))
    layout("clean-mixed", {"latest": mixed})
    arm = build_clean(base, rev, arch_binary=b("app-arm64"), arch="arm64", variant="v8")
    multi = Index([clean, arm, Attestation(clean, name="imgaudit/clean")])
    layout("clean-multiarch", {"latest": multi})
    layout("clean-multiarch-flat", flat=multi)

    if want("clean"):
        docker_tar = os.path.join(ARCHIVES, "clean-docker.tar")
        mk.write_docker_save(docker_tar, clean, "imgaudit/clean:latest")
        mk.write_docker25_save(os.path.join(ARCHIVES, "clean-docker25.tar"), clean,
                               "imgaudit/clean:latest")
        mk.write_oci_archive(os.path.join(ARCHIVES, "clean-oci.tar"),
                             os.path.join(IMAGES, "clean"))
        sk = os.path.join(ARCHIVES, "clean-skopeo.tar")
        if os.path.exists(sk):
            os.remove(sk)
        skopeo("copy", "-q", f"oci:{IMAGES}/clean:latest", f"docker-archive:{sk}:imgaudit/clean:latest")
        mis = os.path.join(IMAGES, "clean-uncompressed-mislabelled")
        shutil.rmtree(mis, ignore_errors=True)
        skopeo("copy", "-q", "--dest-oci-accept-uncompressed-layers", f"docker-archive:{docker_tar}",
               f"oci:{mis}:latest")
        print("archives/clean-{docker,docker25,oci,skopeo}.tar, images/clean-uncompressed-mislabelled")
        rootfs = os.path.join(OUT, "rootfs", "clean")
        if os.path.exists(rootfs):
            subprocess.run(["chmod", "-R", "u+rwX", rootfs], check=False)
            shutil.rmtree(rootfs)
        os.makedirs(os.path.dirname(rootfs), exist_ok=True)
        subprocess.run(["umoci", "raw", "unpack", "--rootless", "--image",
                        f"{IMAGES}/clean:latest", rootfs], check=True)
        print("rootfs/clean")

    # --- GO rules
    cfg = nonroot_config(entrypoint=["/usr/local/bin/app-cgo-glibc"], labels=labels(rev))
    gl = Layer()
    gl.dirs("usr/local/bin")
    for v in GO_VARIANTS:
        gl.file(f"usr/local/bin/{v}", src=b(v), mode=0o755)
    layout("go-rules", {"latest": with_steps(base, cfg, [(gl, buildkit("COPY /out/bin/ /usr/local/bin/"))])})

    cfg = nonroot_config(labels=labels(rev))
    libc = glibc_layer(host("/lib/x86_64-linux-gnu/libc.so.6"))
    st = libc6_status(pkg_version("libc6", "2.36-9+deb12u10"))
    apps = Layer()
    apps.dirs("usr/local/bin", "opt/hello/bin", "opt/hello/lib")
    apps.file("app", src=b("app-cgo-glibc"), mode=0o755)
    apps.file("usr/local/bin/hello-c-libz", src=b("hello-c-libz"), mode=0o755)
    apps.file("opt/hello/bin/hello-c-rpath", src=b("hello-c-rpath"), mode=0o755)
    apps.file("opt/hello/bin/hello-c-runpath", src=b("hello-c-runpath"), mode=0o755)
    apps.file("opt/hello/lib/libgreet.so.1", src=b("libgreet.so.1"), mode=0o644)
    layout("go-libs", {"latest": with_steps(base, cfg, [
        (libc, buildkit("COPY --from=debian:12 /lib/x86_64-linux-gnu/libc.so.6 /lib64/ld-linux-x86-64.so.2 /")),
        (st, buildkit("COPY status.d/libc6 /var/lib/dpkg/status.d/")),
        (apps, buildkit("COPY /out/ /"))])})

    cfg = nonroot_config(entrypoint=["/usr/local/bin/hello-c-glibc"], labels=labels(rev))
    old = glibc_layer(b("fakelibc/libc.so.6"))
    hl = Layer().dirs("usr/local/bin").file("usr/local/bin/hello-c-glibc", src=b("hello-c-glibc"),
                                             mode=0o755)
    layout("go-oldglibc", {"latest": with_steps(base, cfg, [
        (old, buildkit("COPY oldlibc/ /")),
        (libc6_status("2.28-10+deb10u2"), buildkit("COPY status.d/libc6 /var/lib/dpkg/status.d/")),
        (hl, buildkit("COPY /out/hello /usr/local/bin/hello-c-glibc"))])})

    cfg = nonroot_config(labels=labels(rev))
    ml = Layer()
    ml.dirs("lib", "etc")
    ml.file("lib/ld-musl-x86_64.so.1", src=host(os.path.realpath("/lib/ld-musl-x86_64.so.1")),
            mode=0o755)
    ml.symlink("lib/libc.musl-x86_64.so.1", "ld-musl-x86_64.so.1")
    ml.file("etc/ld-musl-x86_64.path", text="/lib\n/usr/local/lib\n/usr/lib\n")
    ma = Layer()
    ma.dirs("usr/local/bin")
    ma.file("app", src=b("app-cgo-musl"), mode=0o755)
    ma.file("usr/local/bin/app-cgo-glibc", src=b("app-cgo-glibc"), mode=0o755)
    layout("musl", {"latest": with_steps(base, cfg, [
        (ml, buildkit("COPY --from=alpine /lib/ld-musl-x86_64.so.1 /lib/")),
        (ma, buildkit("COPY /out/ /"))])})

    # --- Debian's Go toolchain: runnability only for what can start (issue #12)
    if want("go-toolchain-debian"):
        layout("go-toolchain-debian", build_go_toolchain_debian(base, rev))

    # --- FS rules
    if want("fs-rules"):
        layout("fs-rules", {"latest": build_fs_rules(base, rev)})

    # --- CFG rules: the clean image's layers with a different config (and one extra layer).
    def cfg_image(name, cfg, extra=(), hist=buildkit):
        img = Image(config=cfg)
        base.steps(img)
        meta_steps(img, cfg)
        img.add(app_layer(b("app-static")), hist("COPY /out/app /app"))
        for layer, created_by in extra:
            img.add(layer, created_by)
        tail_steps(img, cfg)
        layout(name, {"latest": img})

    cfg_image("cfg-root", nonroot_config(user="", env=[SSL_ENV], workdir="/"),
              hist=classic)
    cfg_image("cfg-user", nonroot_config(user="appuser:appgroup", labels=labels(rev)),
              hist=classic)
    cfg_image("cfg-entry", nonroot_config(entrypoint=["/usr/local/bin/missing"],
                                          labels=labels(rev)))
    inpath = Layer().dirs("usr/local/bin").file("usr/local/bin/app", src=b("app-static"),
                                                mode=0o755)
    cfg_image("cfg-entry-path", nonroot_config(entrypoint=None, cmd=["app"], labels=labels(rev)),
              extra=[(inpath, buildkit("COPY /out/app /usr/local/bin/app"))])
    cfg_image("cfg-shell", nonroot_config(entrypoint=None, cmd=["/bin/sh", "-c", "/app --serve"],
                                          labels=labels(rev)))
    script = Layer().file("entrypoint.sh", mode=0o755, text=(
        "#!/bin/bash\nset -euo pipefail\nexec /app \"$@\"\n"))
    cfg_image("cfg-script", nonroot_config(entrypoint=["/entrypoint.sh"], labels=labels(rev)),
              extra=[(script, buildkit("COPY entrypoint.sh /entrypoint.sh"))])
    cfg_image("cfg-env", nonroot_config(labels=labels(rev), env=[
        "PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        SSL_ENV, "GOPATH=/go", "GOROOT=/usr/local/go", "GOCACHE=/root/.cache/go-build",
        "GODEBUG=http2debug=1", "GOTRACEBACK=crash"]))

    # --- DL rules (distroless profiles; run with --profile)
    if want("dl-static-gaps"):
        layout("dl-static-gaps", {"latest": build_dl_static_gaps(base, rev)})
    if want("dl-extra"):
        layout("dl-extra", {"latest": build_dl_extra(base, rev)})
    if want("dl-base"):
        layout("dl-base", {"latest": build_dl_base(base, rev)})
    if want("dl-cc"):
        layout("dl-cc", {"latest": build_dl_base(base, rev, cc=True)})

    # --- SEC and HIST rules
    if want("sec-rules"):
        layout("sec-rules", {"latest": build_sec_rules(base, rev)})
    if want("sec-decoys"):
        layout("sec-decoys", {"latest": build_sec_decoys(base, rev)})
    if want("hist-rules"):
        layout("hist-rules", {"latest": build_hist_rules(base, rev)})

    return built


def demo():
    img = build_demo()
    tmp = DEMO + ".tmp"
    mk.write_layout(tmp, {"latest": img})
    readme = os.path.join(DEMO, "README.md")
    keep = open(readme).read() if os.path.exists(readme) else None
    shutil.rmtree(DEMO, ignore_errors=True)
    os.replace(tmp, DEMO)
    if keep is not None:
        with open(readme, "w") as f:
            f.write(keep)
    with open(os.path.join(DEMO, "index.json")) as f:
        print("demo", json.load(f)["manifests"][0]["digest"])


def large():
    """~1 GB uncompressed over 8 gzip layers of differing sizes, made of copies of the Go
    binaries; each copy gets a distinct trailer so that no two files or layers are equal.
    Also written zstd-compressed as large-zstd."""
    sources = [b(v) for v in ["app-static", "app-cgo-glibc", "app-pie", "app-go119",
                              "app-race", "app-unstripped", "tool"]]
    targets_mb = [260, 200, 150, 120, 100, 80, 50, 40]
    img = Image(config=nonroot_config(labels=labels(vcs_revision(b("app-static")))))
    Base().steps(img)
    for li, mb in enumerate(targets_mb):
        l = Layer()
        l.dirs(f"opt/large/l{li}")
        total, k = 0, 0
        while total < mb << 20:
            src = sources[(li + k) % len(sources)]
            suffix = f"\nimgaudit-large layer={li} copy={k}\n".encode()
            l.file(f"opt/large/l{li}/{os.path.basename(src)}-{k:03d}", src=src, mode=0o755,
                   suffix=suffix)
            total += os.path.getsize(src) + len(suffix)
            k += 1
        img.add(l, buildkit(f"COPY bin{li}/ /opt/large/l{li}/"))
    mk.write_layout(os.path.join(IMAGES, "large"), {"latest": img})
    print("images/large")
    # The same tar streams in zstd (level 3, zstd's default) for the zstd floor.
    mk.write_layout(os.path.join(IMAGES, "large-zstd"), {"latest": img.copy(compression="zstd", level=3)})
    print("images/large-zstd")


def large_text():
    """~250 MB of text (the host's C headers, Python and Perl libraries, under /opt/text so
    that the secret scanner reads them) over 3 layers: the scanner's worst case, for
    benchmarks; not part of `fixtures`."""
    import glob
    img = Image(config=nonroot_config(labels=labels(vcs_revision(b("app-static")))))
    Base().steps(img)
    pys = sorted(glob.glob("/usr/lib/python3.[0-9]*"))
    for name, src in [("include", "/usr/include"), ("python", pys[-1] if pys else ""),
                      ("perl", "/usr/share/perl")]:
        if not os.path.isdir(src):
            raise SystemExit(f"images.py: {src or 'python3 library'} missing for large-text")
        l = Layer()
        l.dirs("opt/text")
        l.tree(f"opt/text/{name}", src, skip=("__pycache__",))
        img.add(l, buildkit(f"COPY {name}/ /opt/text/{name}/"))
    mk.write_layout(os.path.join(IMAGES, "large-text"), {"latest": img})
    print("images/large-text")


def main():
    global GOROOT
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["fixtures", "demo", "large", "large-text"])
    ap.add_argument("--only", help="comma-separated image names (fixtures)")
    a = ap.parse_args()
    env = subprocess.run([os.path.join(HERE, "tools.sh")], capture_output=True, text=True,
                         check=True).stdout
    GOROOT = dict(l.split("=", 1) for l in env.split())["GOROOT127"]
    os.environ.setdefault("MKIMAGE_WORK", os.path.join(WORK, "mkimage"))
    try:
        if a.what == "fixtures":
            fixtures(set(a.only.split(",")) if a.only else None)
        elif a.what == "demo":
            demo()
        elif a.what == "large-text":
            large_text()
        else:
            large()
    finally:
        mk.cleanup()


if __name__ == "__main__":
    main()
