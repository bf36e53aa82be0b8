#!/usr/bin/env python3
"""Build testdata/dockerfiles/hist with REAL builders, offline, and export the results:

    out/archives/real-docker-classic.tar    docker build (DOCKER_BUILDKIT=0), docker save
    out/archives/real-docker-buildkit.tar   docker build (DOCKER_BUILDKIT=1), docker save
    out/archives/real-docker-multi.tar      docker save of both images (two RepoTags entries)
    out/archives/real-docker-untagged.tar   docker save IMAGE_ID (RepoTags null)
    out/images/real-buildah-layers/         buildah bud --layers, pushed to oci:
    out/images/real-buildah-squash/         buildah bud (one layer; history credits CMD)

Builders: dockerd from Debian's docker.io (20.10) with the vfs storage driver and no bridge or
iptables, in a private data root that is removed afterwards; buildah 1.28 with
--isolation chroot and vfs storage in a private root. Both need root. Nothing is pulled:
the Dockerfile is FROM scratch with busybox-static copied in, and its downloads come from an
HTTP server this script runs on 127.0.0.1 (a random port, passed as the BASE_URL build
argument) serving a fake VERSION endpoint and small tarballs.

A missing tool is an error, never a skip (install: apt-get install docker.io buildah crun).
The outputs are not byte-reproducible (docker 20.10 stamps build times); the tests check
the rules they fire, which do not depend on times or the port.
"""
import functools
import hashlib
import http.server
import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from images import FAKE  # noqa: E402  (the fake GitHub token, shared with sec-rules)

OUT = os.path.join(HERE, "out")
CTX_SRC = os.path.join(HERE, "dockerfiles", "hist")
DOCKER = "/usr/bin/docker"        # docker.io's client (matches its daemon's API)
TOOLS = {"dockerd": "/usr/sbin/dockerd", "docker": DOCKER, "buildah": "buildah",
         "crun or runc": None}


def die(msg):
    sys.exit(f"realbuild.py: {msg}")


def as_root():
    """Re-runs this script with sudo when not root and sudo works without a password; the
    outputs are handed back to the caller."""
    if os.geteuid() == 0:
        return
    if subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode != 0:
        die("must run as root (dockerd, buildah with vfs storage); sudo -n is not available")
    env = ["env", f"IMGAUDIT_REAL_OWNER={os.getuid()}:{os.getgid()}"]
    sys.exit(subprocess.run(["sudo", "-n", *env, sys.executable, *sys.argv]).returncode)


def give_back(paths):
    owner = os.environ.get("IMGAUDIT_REAL_OWNER")
    if not owner:
        return
    uid, gid = (int(x) for x in owner.split(":"))
    for p in paths:
        for root, dirs, files in os.walk(p):
            for n in dirs + files:
                os.lchown(os.path.join(root, n), uid, gid)
        os.lchown(p, uid, gid)


def check_tools():
    missing = []
    for name, path in TOOLS.items():
        if name == "crun or runc":
            if not (shutil.which("crun") or shutil.which("runc")):
                missing.append(name)
        elif not (os.path.exists(path) if path.startswith("/") else shutil.which(path)):
            missing.append(f"{name} ({path})")
    if not os.path.exists("/bin/busybox"):
        missing.append("/bin/busybox (busybox-static)")
    if missing:
        die("missing " + ", ".join(missing) + "; install: apt-get install -y "
            "--no-install-recommends docker.io buildah crun busybox-static")


def tgz(files):
    """A small deterministic tar.gz of {name: bytes}."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), 0o755, 1704067200
            t.addfile(ti, io.BytesIO(data))
    import gzip
    return gzip.compress(raw.getvalue(), mtime=0)


def serve(root):
    """HTTP server for `root` on 127.0.0.1, random port, in a thread. The `?m=text` query of
    the VERSION URL is ignored like every query."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a):
            pass
    handler = functools.partial(Quiet, directory=root)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def unmount_under(root):
    """Unmounts what the daemon left mounted below `root` (dockerd keeps an nsfs mount at
    exec-root/netns/default after it stops), deepest first."""
    with open("/proc/self/mounts") as f:
        points = [l.split()[1] for l in f]
    for p in sorted((p for p in points if p.startswith(root + "/")), key=len, reverse=True):
        subprocess.run(["umount", p], check=False)


def run(cmd, **kw):
    print("+ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def main():
    as_root()
    check_tools()
    os.makedirs(os.path.join(OUT, "archives"), exist_ok=True)
    os.makedirs(os.path.join(OUT, "images"), exist_ok=True)
    # Short path: dockerd's unix socket path must stay under 108 bytes.
    w = tempfile.mkdtemp(prefix="imgaudit-real-", dir="/tmp")
    dockerd = None
    try:
        www = os.path.join(w, "www")
        os.makedirs(os.path.join(www, "dl"))
        with open(os.path.join(www, "VERSION"), "w") as f:
            f.write("go1.27.3\ntime 2026-11-04T00:00:00Z\n")
        goroot = tgz({"go/VERSION": b"go1.27.3\n", "go/README.md": b"not a toolchain\n"})
        with open(os.path.join(www, "dl", "go1.27.3.linux-amd64.tar.gz"), "wb") as f:
            f.write(goroot)
        tool = tgz({"tool/README": b"fixture tool\n"})
        with open(os.path.join(www, "dl", "tool.tgz"), "wb") as f:
            f.write(tool)
        httpd = serve(www)
        base_url = f"http://127.0.0.1:{httpd.server_address[1]}"

        ctx = os.path.join(w, "ctx")
        shutil.copytree(CTX_SRC, ctx)
        shutil.copy2("/bin/busybox", os.path.join(ctx, "busybox"))
        args = ["--build-arg", f"BASE_URL={base_url}",
                "--build-arg", f"TOOL_SHA256={hashlib.sha256(tool).hexdigest()}",
                "--build-arg", f"GITHUB_TOKEN={FAKE['github']}"]

        # ---- docker: classic builder and BuildKit
        d = os.path.join(w, "d")
        os.makedirs(d)
        sock = os.path.join(d, "docker.sock")
        log = open(os.path.join(d, "log"), "w")
        dockerd = subprocess.Popen(
            ["/usr/sbin/dockerd", "--data-root", os.path.join(d, "data"), "--exec-root",
             os.path.join(d, "exec"), "--pidfile", os.path.join(d, "dockerd.pid"),
             "-H", f"unix://{sock}", "--storage-driver", "vfs", "--iptables=false",
             "--ip6tables=false", "--bridge=none", "--ip-masq=false"],
            stdout=log, stderr=subprocess.STDOUT)
        env = dict(os.environ, DOCKER_HOST=f"unix://{sock}",
                   DOCKER_CONFIG=os.path.join(d, "client"))
        for _ in range(200):
            if subprocess.run([DOCKER, "version"], env=env, capture_output=True).returncode == 0:
                break
            if dockerd.poll() is not None:
                die(f"dockerd exited ({dockerd.returncode}); see its log:\n"
                    + open(os.path.join(d, "log")).read()[-3000:])
            time.sleep(0.1)
        else:
            die("dockerd did not come up in 20 s")
        for name, bk in [("classic", "0"), ("buildkit", "1")]:
            tag = f"imgaudit/real-{name}:latest"
            run([DOCKER, "build", "--quiet", "--network", "host", *args, "-t", tag, ctx],
                env=dict(env, DOCKER_BUILDKIT=bk), stdout=subprocess.DEVNULL)
            dest = os.path.join(OUT, "archives", f"real-docker-{name}.tar")
            if os.path.exists(dest):
                os.remove(dest)
            run([DOCKER, "save", "-o", dest, tag], env=env)
            print(f"archives/real-docker-{name}.tar", flush=True)
        # Reference selection (`docker-archive:PATH:REF`, `:@N`): two images in one archive,
        # and one saved by image ID, which `docker save` writes with `"RepoTags": null`.
        multi = os.path.join(OUT, "archives", "real-docker-multi.tar")
        untagged = os.path.join(OUT, "archives", "real-docker-untagged.tar")
        for p in (multi, untagged):
            if os.path.exists(p):
                os.remove(p)
        run([DOCKER, "save", "-o", multi, "imgaudit/real-classic:latest",
             "imgaudit/real-buildkit:latest"], env=env)
        image_id = subprocess.run([DOCKER, "image", "inspect", "-f", "{{.Id}}",
                                   "imgaudit/real-classic:latest"], env=env, check=True,
                                  capture_output=True, text=True).stdout.strip()
        run([DOCKER, "save", "-o", untagged, image_id], env=env)
        print("archives/real-docker-{multi,untagged}.tar", flush=True)
        dockerd.send_signal(signal.SIGTERM)
        dockerd.wait(timeout=30)
        dockerd = None

        # ---- buildah: with and without --layers
        b = os.path.join(w, "b")
        storage = ["--root", os.path.join(b, "root"), "--runroot", os.path.join(b, "run"),
                   "--storage-driver", "vfs"]
        for name, layers in [("layers", ["--layers"]), ("squash", [])]:
            tag = f"localhost/imgaudit/real-{name}:latest"
            run(["buildah", *storage, "bud", "--quiet", "--isolation", "chroot", *layers,
                 "--timestamp", "1704067200", *args, "-t", tag, "-f",
                 os.path.join(ctx, "Dockerfile"), ctx], stdout=subprocess.DEVNULL)
            dest = os.path.join(OUT, "images", f"real-buildah-{name}")
            shutil.rmtree(dest, ignore_errors=True)
            run(["buildah", *storage, "push", "--quiet", tag, f"oci:{dest}:latest"])
            print(f"images/real-buildah-{name}", flush=True)
        httpd.shutdown()
        give_back([os.path.join(OUT, "archives", f"real-docker-{n}.tar")
                   for n in ("classic", "buildkit", "multi", "untagged")]
                  + [os.path.join(OUT, "images", f"real-buildah-{n}") for n in ("layers", "squash")])
    finally:
        if dockerd is not None and dockerd.poll() is None:
            dockerd.send_signal(signal.SIGTERM)
            try:
                dockerd.wait(timeout=30)
            except subprocess.TimeoutExpired:
                dockerd.kill()
        unmount_under(w)
        shutil.rmtree(w, ignore_errors=True)


if __name__ == "__main__":
    main()
