//! Images read from container engines, through the built binary: a real `dockerd` (Debian's
//! docker.io, vfs, its own data root and socket) with images loaded by `docker load` and
//! pulled from a real registry, audited by name, ID, ID prefix and digest; each report must
//! equal the report of the archive `docker save` writes for the same image (the oracle).
//! Hostile engines are a test-owned HTTP server on a private unix socket: garbage answers,
//! oversized answers, a `/get` stream that breaks off, layers whose bytes do not match.
//! A real `containerd` (Debian's) with images imported by `ctr images import` is read
//! through its gRPC API; each report must equal the report of the layout or archive that
//! was imported. Services are started here on private sockets under /tmp, never the
//! system's.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::{err, fixture, wait_for, Registry};

fn archive(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/out/archives")
        .join(name);
    assert!(
        p.is_file(),
        "{} is missing: run `make fixtures`",
        p.display()
    );
    p
}

/// Runs imgaudit with `env`, a fresh HOME, TMPDIR and working directory, no layer store and
/// none of the caller's engine variables; returns the output and the scratch directory, so
/// a test can check that nothing was written there.
fn imgaudit(args: &[&str], env: &[(&str, &str)]) -> (Output, tempfile::TempDir) {
    let scratch = tempfile::tempdir().unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_imgaudit"));
    c.args(["-q", "--no-cache"])
        .args(args)
        .current_dir(scratch.path())
        .env("NO_COLOR", "1")
        .env("HOME", scratch.path())
        .env("TMPDIR", scratch.path());
    for k in [
        "XDG_CACHE_HOME",
        "XDG_RUNTIME_DIR",
        "DOCKER_CONFIG",
        "DOCKER_HOST",
        "DOCKER_CONTEXT",
        "DOCKER_TLS_VERIFY",
        "DOCKER_CERT_PATH",
        "CONTAINER_HOST",
        "CONTAINERD_ADDRESS",
        "CONTAINERD_NAMESPACE",
        "REGISTRY_AUTH_FILE",
        "IMGAUDIT_IMAGE_SRC",
    ] {
        c.env_remove(k);
    }
    // Never the system's containerd: a socket that does not exist unless the test names one.
    c.env(
        "CONTAINERD_ADDRESS",
        scratch.path().join("no-containerd.sock"),
    );
    for (k, v) in env {
        c.env(k, v);
    }
    (c.output().expect("run imgaudit"), scratch)
}

/// The JSON reports without what names the input (reference and source kind).
fn reports(o: &Output) -> Vec<Value> {
    assert_eq!(o.status.code(), Some(0), "imgaudit failed: {}", err(o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("a JSON report");
    let mut all = match v {
        Value::Array(a) => a,
        r => vec![r],
    };
    for r in &mut all {
        let img = r["image"].as_object_mut().unwrap();
        img.remove("reference");
        img.remove("source");
    }
    all
}

/// The one JSON report without what names the input (reference and source kind).
fn report(o: &Output) -> Value {
    let mut all = reports(o);
    assert_eq!(all.len(), 1);
    all.remove(0)
}

fn source_of(o: &Output) -> String {
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let r = if v.is_array() { &v[0] } else { &v };
    r["image"]["source"].as_str().unwrap().to_string()
}

/// Exit 2 with one line on stderr that contains `want`.
fn fails_with(o: &Output, want: &str) {
    let e = err(o);
    assert_eq!(o.status.code(), Some(2), "stderr: {e}");
    assert_eq!(e.trim_end().lines().count(), 1, "one line: {e}");
    assert!(e.contains(want), "{want:?} not in: {e}");
}

/// Nothing but what the test put there is left in a run's scratch directory.
fn nothing_written(dir: &Path) {
    let left: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "imgaudit wrote {left:?}");
}

/// A `dockerd` of its own: data root, exec root, pidfile and socket in a short directory
/// under /tmp (unix socket paths are limited to 108 bytes), no networking set up.
struct Dockerd {
    dir: tempfile::TempDir,
    child: Child,
}

impl Dockerd {
    fn start(extra: &[&str]) -> Self {
        for t in ["dockerd", "docker"] {
            let found = Path::new("/usr/sbin").join(t).is_file() || {
                std::env::var_os("PATH")
                    .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(t).is_file()))
            };
            assert!(
                found,
                "{t} is not installed: the engine tests need docker.io (see .ci/run)"
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("ia-d")
            .tempdir_in("/tmp")
            .unwrap();
        let d = dir.path();
        let log = std::fs::File::create(d.join("log")).unwrap();
        let child = Command::new("dockerd")
            .args(["--data-root", &d.join("data").to_string_lossy()])
            .args(["--exec-root", &d.join("exec").to_string_lossy()])
            .args(["--pidfile", &d.join("dockerd.pid").to_string_lossy()])
            .args(["-H", &format!("unix://{}", d.join("docker.sock").display())])
            .args([
                "--storage-driver",
                "vfs",
                "--iptables=false",
                "--ip6tables=false",
            ])
            .args(["--bridge=none", "--ip-masq=false"])
            .args(extra)
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        let mut me = Self { dir, child };
        let up = wait_for(Duration::from_secs(30), || {
            me.docker_status(&["version"]).success()
        });
        if !up {
            me.stop();
            panic!(
                "dockerd did not come up: {}",
                std::fs::read_to_string(me.dir.path().join("log")).unwrap_or_default()
            );
        }
        me
    }

    fn host(&self) -> String {
        format!("unix://{}", self.dir.path().join("docker.sock").display())
    }

    fn docker_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.args(args)
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.path().join("client"));
        c
    }

    fn docker_status(&self, args: &[&str]) -> std::process::ExitStatus {
        self.docker_cmd(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
    }

    fn docker(&self, args: &[&str]) -> String {
        let o = self.docker_cmd(args).output().unwrap();
        assert!(
            o.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap().trim().to_string()
    }

    fn stop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let mut stopped = false;
            for _ in 0..300 {
                if self.child.try_wait().ok().flatten().is_some() {
                    stopped = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            if !stopped {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        // dockerd leaves mounts below its roots (exec-root/netns): unmount deepest first.
        let root = self.dir.path().to_string_lossy().into_owned();
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|p| p.starts_with(&format!("{root}/")))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = Command::new("umount").arg(p).status();
        }
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Docker's TLS mode (<https://docs.docker.com/engine/security/protect-access/>) made with
/// openssl in `dir`: a CA, a server certificate for 127.0.0.1 (`server-cert.pem`,
/// `server-key.pem`) and a client certificate (`cert.pem`, `key.pem`), the client's files
/// named as `DOCKER_CERT_PATH` holds them; and a second CA (`other-ca/ca.pem`) that signed
/// neither.
fn docker_tls_material(dir: &Path) {
    let openssl = |args: &[&str]| support::server::openssl(dir, args);
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    std::fs::create_dir_all(dir.join("other-ca")).unwrap();
    for (key, cert) in [
        ("ca-key.pem", "ca.pem"),
        ("other-ca/key.pem", "other-ca/ca.pem"),
    ] {
        let mut a = vec![
            "req",
            "-x509",
            "-days",
            "2",
            "-subj",
            "/CN=imgaudit test CA",
        ];
        a.extend(ec);
        a.extend(["-keyout", key, "-out", cert]);
        openssl(&a);
    }
    for (name, key, cert, ext) in [
        (
            "/CN=127.0.0.1",
            "server-key.pem",
            "server-cert.pem",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        ),
        (
            "/CN=client",
            "key.pem",
            "cert.pem",
            "extendedKeyUsage=clientAuth\n",
        ),
    ] {
        let mut a = vec!["req", "-subj", name];
        a.extend(ec);
        a.extend(["-keyout", key, "-out", "req.csr"]);
        openssl(&a);
        std::fs::write(dir.join("ext.cnf"), ext).unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "req.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            cert,
        ]);
    }
}

/// One dockerd for every case (starting one costs about a second, loading images more).
#[test]
fn docker_daemon_reports_equal_docker_save_reports() {
    let reg = Registry::plain();
    reg.push(&fixture("clean-multiarch"), "multi:1", &["--all"]);
    reg.push(&fixture("go-rules"), "go:1", &[]);
    // Also listening on TCP with TLS and client certificates (DOCKER_TLS_VERIFY).
    let tls = tempfile::tempdir().unwrap();
    docker_tls_material(tls.path());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = |f: &str| tls.path().join(f).to_string_lossy().into_owned();
    let d = Dockerd::start(&[
        "--insecure-registry",
        &reg.host(),
        "-H",
        &format!("tcp://127.0.0.1:{port}"),
        "--tlsverify",
        "--tlscacert",
        &t("ca.pem"),
        "--tlscert",
        &t("server-cert.pem"),
        "--tlskey",
        &t("server-key.pem"),
    ]);
    let env = [("DOCKER_HOST", d.host())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for a in ["real-docker-classic.tar", "real-docker-buildkit.tar"] {
        d.docker(&["load", "-q", "-i", &archive(a).to_string_lossy()]);
    }
    let pulled = format!("{}/go:1", reg.host());
    d.docker(&["pull", "-q", &pulled]);
    let multi = format!("{}/multi:1", reg.host());
    d.docker(&["pull", "-q", "--platform", "linux/arm64", &multi]);
    let saved = tempfile::tempdir().unwrap();

    let check = |name: &str, engine_ref: &str| {
        let tar = saved
            .path()
            .join(format!("{}.tar", name.replace(['/', ':'], "_")));
        d.docker(&["save", "-o", &tar.to_string_lossy(), name]);
        let want = report(
            &imgaudit(
                &["-f", "json", &format!("docker-archive:{}", tar.display())],
                &[],
            )
            .0,
        );
        let (o, scratch) = imgaudit(&["-f", "json", engine_ref], &env);
        assert_eq!(report(&o), want, "{engine_ref}");
        assert_eq!(source_of(&o), "docker-daemon");
        nothing_written(scratch.path());
    };
    // By name (built by the classic builder and by BuildKit, and pulled).
    check(
        "imgaudit/real-classic:latest",
        "docker-daemon:imgaudit/real-classic:latest",
    );
    check(
        "imgaudit/real-buildkit",
        "docker-daemon:imgaudit/real-buildkit",
    );
    check(&pulled, &format!("docker-daemon:{pulled}"));
    // By image ID, full and as a prefix, as docker takes them.
    let id = d.docker(&[
        "image",
        "inspect",
        "-f",
        "{{.Id}}",
        "imgaudit/real-classic:latest",
    ]);
    check(&id, &format!("docker-daemon:{id}"));
    check(
        &id,
        &format!(
            "docker-daemon:{}",
            &id["sha256:".len().."sha256:".len() + 12]
        ),
    );
    // By digest (the repository digest the registry gave it).
    let digest = d.docker(&[
        "image",
        "inspect",
        "-f",
        "{{index .RepoDigests 0}}",
        &pulled,
    ]);
    assert!(digest.contains("@sha256:"), "{digest}");
    check(&digest, &format!("docker-daemon:{digest}"));
    // One platform of a multi-platform image (the one pulled).
    check(&multi, &format!("docker-daemon:{multi}"));

    // tcp:// with TLS, as the docker CLI reads DOCKER_HOST, DOCKER_TLS_VERIFY and
    // DOCKER_CERT_PATH: the same report; without a client certificate, or trusting another
    // CA, a one-line error.
    let tcp = format!("tcp://127.0.0.1:{port}");
    let certs = tls.path().to_string_lossy().into_owned();
    let tls_env = [
        ("DOCKER_HOST", tcp.as_str()),
        ("DOCKER_TLS_VERIFY", "1"),
        ("DOCKER_CERT_PATH", certs.as_str()),
    ];
    let via_unix = report(&imgaudit(&["-f", "json", &format!("docker-daemon:{pulled}")], &env).0);
    let (o, _) = imgaudit(
        &["-f", "json", &format!("docker-daemon:{pulled}")],
        &tls_env,
    );
    assert_eq!(report(&o), via_unix);
    assert_eq!(source_of(&o), "docker-daemon");
    let ca_only = tempfile::tempdir().unwrap();
    std::fs::copy(tls.path().join("ca.pem"), ca_only.path().join("ca.pem")).unwrap();
    let other_ca = tls.path().join("other-ca").to_string_lossy().into_owned();
    for cert_path in [ca_only.path().to_string_lossy().into_owned(), other_ca] {
        let mut e = tls_env;
        e[2].1 = &cert_path;
        let (o, _) = imgaudit(&[&format!("docker-daemon:{pulled}")], &e);
        assert_eq!(o.status.code(), Some(2), "{cert_path}: {}", err(&o));
        assert_eq!(err(&o).trim_end().lines().count(), 1, "{}", err(&o));
    }

    // Not there; the engine unreachable (named explicitly: an error, one line).
    let (o, _) = imgaudit(&["docker-daemon:imgaudit/absent:1"], &env);
    fails_with(&o, "no such image");
    let gone = format!("unix://{}", d.dir.path().join("gone.sock").display());
    let (o, _) = imgaudit(&["docker-daemon:alpine"], &[("DOCKER_HOST", &gone)]);
    fails_with(&o, "unreachable");
    // Bare references (the default --image-src order): the engine's image when it has it,
    // else the registry's; no engine socket → the registry, without a word on stderr;
    // `docker://` is the registry even when the engine has the image.
    reg.push(&fixture("clean"), "clean:1", &[]);
    let absent = format!("{}/clean:1", reg.host());
    let bare = |r: &str, env: &[(&str, &str)]| {
        imgaudit(&["-f", "json", "--insecure", &reg.host(), r], env).0
    };
    let no_docker = [("DOCKER_HOST", gone.as_str())];
    for (r, env, want) in [
        (pulled.clone(), &env[..], "docker-daemon"),
        (absent.clone(), &env[..], "registry"),
        (format!("docker://{pulled}"), &env[..], "registry"),
        (pulled.clone(), &no_docker[..], "registry"),
    ] {
        let o = bare(&r, env);
        assert_eq!(source_of(&o), want, "{r}");
        assert_eq!(err(&o), "", "{r}");
    }
    let (o, _) = imgaudit(&["--image-src", "docker", &absent], &env);
    fails_with(&o, "no such image");
    let (o, _) = imgaudit(&["--image-src", "docker", &absent], &no_docker);
    fails_with(&o, "no such image in docker");

    // The report's source and reference.
    let (o, _) = imgaudit(&["-f", "json", "docker-daemon:imgaudit/real-classic"], &env);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let r = if v.is_array() { &v[0] } else { &v };
    assert_eq!(
        r["image"]["reference"],
        "docker-daemon:imgaudit/real-classic"
    );
}

/// Podman's API service (`podman system service`) over its own storage (vfs) and socket.
struct PodmanService {
    dir: tempfile::TempDir,
    child: Child,
}

impl PodmanService {
    fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ia-p")
            .tempdir_in("/tmp")
            .unwrap();
        let mut c = Self::podman_in(dir.path());
        c.args(["system", "service", "--time=0"])
            .arg(format!(
                "unix://{}",
                dir.path().join("podman.sock").display()
            ))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("log")).unwrap());
        let child = c.spawn().expect("podman is not installed (see .ci/run)");
        let sock = dir.path().join("podman.sock");
        let me = Self { dir, child };
        assert!(
            wait_for(Duration::from_secs(30), || sock.exists()),
            "podman system service did not come up: {}",
            std::fs::read_to_string(me.dir.path().join("log")).unwrap_or_default()
        );
        me
    }

    fn podman_in(dir: &Path) -> Command {
        let mut c = Command::new("podman");
        c.args(["--root", &dir.join("root").to_string_lossy()])
            .args(["--runroot", &dir.join("run").to_string_lossy()])
            .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
            .args([
                "--events-backend",
                "file",
                "--tmpdir",
                &dir.join("tmp").to_string_lossy(),
            ]);
        c
    }

    fn podman(&self, args: &[&str]) -> String {
        let o = Self::podman_in(self.dir.path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap().trim().to_string()
    }

    fn host(&self) -> String {
        format!("unix://{}", self.dir.path().join("podman.sock").display())
    }
}

impl Drop for PodmanService {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        // vfs layers are plain directories; podman keeps no mounts without containers.
        let _ = Self::podman_in(self.dir.path())
            .args(["system", "reset", "-f"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn podman_reports_equal_podman_save_reports() {
    let p = PodmanService::start();
    let env = [("CONTAINER_HOST", p.host())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    p.podman(&[
        "load",
        "-q",
        "-i",
        &archive("real-docker-buildkit.tar").to_string_lossy(),
    ]);
    // An OCI image (gzip layers in podman's store; its export is uncompressed), by full ID.
    let layout = std::fs::canonicalize(fixture("go-rules")).unwrap();
    let go = p.podman(&["pull", "-q", &format!("oci:{}", layout.display())]);
    let go = go
        .lines()
        .last()
        .expect("the pulled image's ID")
        .to_string();
    let saved = tempfile::tempdir().unwrap();
    let check = |name: &str, engine_ref: &str| {
        let tar = saved.path().join("saved.tar");
        let _ = std::fs::remove_file(&tar);
        p.podman(&[
            "save",
            "-q",
            "--format",
            "docker-archive",
            "-o",
            &tar.to_string_lossy(),
            name,
        ]);
        let want = report(
            &imgaudit(
                &["-f", "json", &format!("docker-archive:{}", tar.display())],
                &[],
            )
            .0,
        );
        let (o, scratch) = imgaudit(&["-f", "json", engine_ref], &env);
        assert_eq!(report(&o), want, "{engine_ref}");
        assert_eq!(source_of(&o), "podman");
        nothing_written(scratch.path());
    };
    check(
        "imgaudit/real-buildkit:latest",
        "podman:imgaudit/real-buildkit:latest",
    );
    check(
        "imgaudit/real-buildkit:latest",
        "containers-storage:localhost/imgaudit/real-buildkit:latest",
    );
    let id = p.podman(&[
        "image",
        "inspect",
        "-f",
        "{{.Id}}",
        "imgaudit/real-buildkit",
    ]);
    check(&id, &format!("podman:{}", &id[..12]));
    check(&go, &format!("podman:sha256:{go}"));
    // A bare reference: Docker not running, Podman has it.
    let gone = format!("unix://{}", p.dir.path().join("gone.sock").display());
    let (o, _) = imgaudit(
        &["-f", "json", "imgaudit/real-buildkit:latest"],
        &[("CONTAINER_HOST", &p.host()), ("DOCKER_HOST", &gone)],
    );
    assert_eq!(source_of(&o), "podman");
    assert_eq!(err(&o), "");
    let (o, _) = imgaudit(&["podman:imgaudit/absent"], &env);
    fails_with(&o, "no such image");
    // No API socket at all.
    let (o, _) = imgaudit(&["podman:alpine"], &[("XDG_RUNTIME_DIR", "/nonexistent")]);
    if !Path::new("/run/podman/podman.sock").exists() {
        fails_with(&o, "podman system service");
    }
}

/// A `containerd` of its own (Debian's containerd): root, state, sockets and config in a
/// short directory under /tmp, the CRI plugin off; images are imported with `ctr images
/// import --no-unpack`, so no snapshot is made and nothing is mounted.
struct Containerd {
    dir: tempfile::TempDir,
    child: Child,
}

impl Containerd {
    fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ia-c")
            .tempdir_in("/tmp")
            .unwrap();
        let d = dir.path();
        let config = format!(
            r#"version = 2
root = "{root}/root"
state = "{root}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{root}/c.sock"
[ttrpc]
  address = "{root}/c.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
"#,
            root = d.display()
        );
        std::fs::write(d.join("config.toml"), config).unwrap();
        let log = std::fs::File::create(d.join("log")).unwrap();
        let child = Command::new("containerd")
            .args(["--config", &d.join("config.toml").to_string_lossy()])
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("containerd is not installed (see .ci/run)");
        let me = Self { dir, child };
        let up = wait_for(Duration::from_secs(30), || {
            me.ctr_cmd("default", &["version"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        assert!(
            up,
            "containerd did not come up: {}",
            std::fs::read_to_string(me.dir.path().join("log")).unwrap_or_default()
        );
        me
    }

    fn socket(&self) -> String {
        self.dir.path().join("c.sock").display().to_string()
    }

    fn ctr_cmd(&self, ns: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ctr");
        c.args(["--address", &self.socket(), "-n", ns]).args(args);
        c
    }

    fn ctr(&self, args: &[&str]) -> String {
        let o = self.ctr_cmd("k8s.io", args).output().unwrap();
        assert!(
            o.status.success(),
            "ctr {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap().trim().to_string()
    }

    /// Imports a tar stream (a docker archive, or an OCI layout made a tar here) into the
    /// `k8s.io` namespace, as a kubelet's images are.
    fn import(&self, input: &Path, args: &[&str]) {
        let tar = if input.is_dir() {
            let t = self.dir.path().join("layout.tar");
            let ok = Command::new("tar")
                .args([
                    "-C",
                    &input.to_string_lossy(),
                    "-cf",
                    &t.to_string_lossy(),
                    ".",
                ])
                .status()
                .unwrap();
            assert!(ok.success());
            t
        } else {
            input.to_path_buf()
        };
        let mut a = vec!["images", "import", "--no-unpack"];
        a.extend_from_slice(args);
        let t = tar.to_string_lossy().into_owned();
        a.push(&t);
        self.ctr(&a);
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// The digest of the largest layer of the one manifest an OCI layout's index names.
fn largest_layer(layout: &Path) -> String {
    let blob = |d: &str| layout.join("blobs/sha256").join(&d["sha256:".len()..]);
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let m = index["manifests"][0]["digest"].as_str().unwrap();
    let m: Value = serde_json::from_slice(&std::fs::read(blob(m)).unwrap()).unwrap();
    let l = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|l| l["size"].as_u64())
        .unwrap();
    l["digest"].as_str().unwrap().to_string()
}

/// A copy of `layout` whose index names a manifest of [`MAX_MANIFEST_BYTES`] + 1 bytes: the
/// layout's manifest with an annotation that pads it.
///
/// [`MAX_MANIFEST_BYTES`]: audit_core::limits::MAX_MANIFEST_BYTES
fn oversized_manifest_layout(layout: &Path, tmp: &Path) -> PathBuf {
    let out = tmp.join("big-layout");
    let blobs = out.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    for e in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), blobs.join(e.file_name())).unwrap();
    }
    std::fs::copy(layout.join("oci-layout"), out.join("oci-layout")).unwrap();
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let m = index["manifests"][0]["digest"].as_str().unwrap();
    let mut m: Value =
        serde_json::from_slice(&std::fs::read(blobs.join(&m["sha256:".len()..])).unwrap()).unwrap();
    m["annotations"] = serde_json::json!({ "pad": "" });
    let bare = serde_json::to_vec(&m).unwrap().len() as u64;
    let pad = audit_core::limits::MAX_MANIFEST_BYTES + 1 - bare;
    m["annotations"]["pad"] = Value::String("x".repeat(pad as usize));
    let bytes = serde_json::to_vec(&m).unwrap();
    assert_eq!(
        bytes.len() as u64,
        audit_core::limits::MAX_MANIFEST_BYTES + 1
    );
    let d = audit_core::digest::Digest::sha256_of(&bytes);
    std::fs::write(blobs.join(d.hex()), &bytes).unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": d.to_string(),
            "size": bytes.len(),
            "annotations": { "org.opencontainers.image.ref.name": "latest" }
        }]
    });
    std::fs::write(out.join("index.json"), index.to_string()).unwrap();
    out
}

/// containerd's images and content services: images imported with `ctr -n k8s.io images
/// import` are audited by name and by digest, and each report equals the report of the
/// same image read from the file it was imported from (an OCI layout, or a `docker save`
/// archive: containerd gives that one a manifest of its own, which the archive lacks).
#[test]
fn containerd_reports_equal_layout_and_archive_reports() {
    let c = Containerd::start();
    let sock = c.socket();
    let env = [
        ("CONTAINERD_ADDRESS", sock.as_str()),
        ("CONTAINERD_NAMESPACE", "k8s.io"),
    ];
    let go = fixture("go-rules");
    let multi = fixture("clean-multiarch");
    let classic = archive("real-docker-classic.tar");
    c.import(&go, &["--base-name", "imgaudit/go-rules"]);
    c.import(
        &multi,
        &["--all-platforms", "--base-name", "imgaudit/multi"],
    );
    c.import(&classic, &[]);
    let audit = |args: &[&str]| {
        let mut a = vec!["-f", "json"];
        a.extend_from_slice(args);
        let (o, scratch) = imgaudit(&a, &env);
        nothing_written(scratch.path());
        o
    };
    let want = |args: &[&str]| reports(&audit(args));
    let check = |engine_args: &[&str], oracle: &[&str]| {
        let o = audit(engine_args);
        assert_eq!(reports(&o), want(oracle), "{engine_args:?}");
        assert_eq!(source_of(&o), "containerd");
    };

    // An OCI image, by name (with and without its tag), by NAME@DIGEST and by bare digest.
    let layout = format!("oci:{}", go.display());
    let layout_go = layout.clone();
    check(&["containerd:imgaudit/go-rules:latest"], &[&layout]);
    check(&["containerd:imgaudit/go-rules"], &[&layout]);
    let digest = c.ctr(&["images", "ls", "-q"]);
    assert!(digest.contains("imgaudit/go-rules:latest"), "{digest}");
    let index: Value =
        serde_json::from_slice(&std::fs::read(go.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    check(
        &[&format!("containerd:imgaudit/go-rules@{digest}")],
        &[&layout],
    );
    check(&[&format!("containerd:{digest}")], &[&layout]);

    // A multi-platform index: one platform, and every platform.
    let layout = format!("oci:{}", multi.display());
    check(
        &["--platform", "linux/arm64", "containerd:imgaudit/multi"],
        &["--platform", "linux/arm64", &layout],
    );
    check(
        &["--all-platforms", "containerd:imgaudit/multi:latest"],
        &["--all-platforms", &layout],
    );

    // A `docker save` archive (ctr stores it as docker.io/imgaudit/real-classic:latest):
    // the same report, but for the manifest containerd made.
    let mut got = report(&audit(&["containerd:imgaudit/real-classic"]));
    let made = got["image"]
        .as_object_mut()
        .unwrap()
        .remove("manifest_digest");
    assert!(made.is_some_and(|d| d.as_str().unwrap().starts_with("sha256:")));
    let oracle = format!("docker-archive:{}", classic.display());
    assert_eq!(got, report(&audit(&[&oracle])));

    // The report says where the image came from.
    let o = audit(&["containerd:docker.io/imgaudit/real-classic:latest"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["image"]["reference"],
        "containerd:docker.io/imgaudit/real-classic:latest"
    );

    // A bare reference, Docker and Podman not running: containerd has it.
    let gone = format!("unix://{}", c.dir.path().join("gone.sock").display());
    let mut bare_env = env.to_vec();
    bare_env.extend([("DOCKER_HOST", gone.as_str()), ("CONTAINER_HOST", &gone)]);
    let (o, _) = imgaudit(&["-f", "json", "imgaudit/go-rules:latest"], &bare_env);
    assert_eq!(source_of(&o), "containerd");
    assert_eq!(err(&o), "");

    // Blobs are read from the content store's files when this process sees them (here: the
    // same host, as root). Where it does not (a pod without the host path; here a mount
    // namespace with an empty tmpfs over the store), through containerd's content.Read:
    // the same report.
    let store = c.dir.path().join("root/io.containerd.content.v1.content");
    assert!(store.join("blobs/sha256").is_dir(), "{}", store.display());
    let o = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(r#"mount -t tmpfs none "$1" && shift && exec "$@""#)
        .args([
            "sh",
            &store.to_string_lossy(),
            env!("CARGO_BIN_EXE_imgaudit"),
        ])
        .args([
            "-q",
            "--no-cache",
            "-f",
            "json",
            "containerd:imgaudit/go-rules",
        ])
        .env("CONTAINERD_ADDRESS", &sock)
        .env("CONTAINERD_NAMESPACE", "k8s.io")
        .env("HOME", c.dir.path())
        .output()
        .expect("unshare (util-linux) is not installed");
    assert_eq!(reports(&o), want(&[&layout_go]), "{}", err(&o));

    // A layer blob whose bytes on disk no longer match its digest: exit 2 naming the layer,
    // whichever way it is read.
    let corrupt = fixture("go-libs");
    c.import(&corrupt, &["--base-name", "imgaudit/corrupt"]);
    let layer = largest_layer(&corrupt);
    let file = store
        .join("blobs/sha256")
        .join(layer.trim_start_matches("sha256:"));
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&file, bytes).unwrap();
    let (o, scratch) = imgaudit(&["containerd:imgaudit/corrupt"], &env);
    fails_with(&o, &layer);
    assert!(err(&o).contains("blob digest mismatch"), "{}", err(&o));
    nothing_written(scratch.path());

    // A layer blob missing from the content store (garbage-collected): one clear line.
    let musl = fixture("musl");
    c.import(&musl, &["--base-name", "imgaudit/musl"]);
    let layer = largest_layer(&musl);
    c.ctr(&["content", "rm", &layer]);
    let (o, scratch) = imgaudit(&["containerd:imgaudit/musl"], &env);
    fails_with(&o, &format!("blob {layer} is not in the content store"));
    nothing_written(scratch.path());

    // An image whose manifest is larger than the bound (padded with an annotation; its
    // bytes are the content store's, so containerd itself is not lied to).
    let big = oversized_manifest_layout(&fixture("clean"), c.dir.path());
    c.import(&big, &["--base-name", "imgaudit/big"]);
    let (o, _) = imgaudit(&["containerd:imgaudit/big"], &env);
    fails_with(&o, "larger than");

    // Missing image; the wrong namespace (it names the namespaces there are); containerd
    // not running (named explicitly: an error; in the default order: skipped without a
    // word).
    let (o, _) = imgaudit(&["containerd:imgaudit/absent:1"], &env);
    fails_with(&o, "no such image: imgaudit/absent:1");
    let (o, _) = imgaudit(
        &[
            "--containerd-namespace",
            "default",
            "containerd:imgaudit/go-rules",
        ],
        &env,
    );
    fails_with(&o, "this containerd has: k8s.io");
    let no_socket = c.dir.path().join("gone.sock").display().to_string();
    let (o, _) = imgaudit(
        &["containerd:imgaudit/go-rules"],
        &[("CONTAINERD_ADDRESS", &no_socket)],
    );
    fails_with(&o, "unreachable");
    let mut none = bare_env.clone();
    none[0] = ("CONTAINERD_ADDRESS", &no_socket);
    let (o, _) = imgaudit(
        &[
            "--image-src",
            "docker,podman,containerd",
            "imgaudit/go-rules:latest",
        ],
        &none,
    );
    fails_with(&o, "no such image in docker, podman, containerd");
}

/// What a fake engine answers.
#[derive(Clone)]
enum Answer {
    /// `GET …/json`: this image ID; `GET …/get`: these bytes, cut after `cut` bytes while
    /// announcing them all.
    Image {
        id: String,
        archive: Vec<u8>,
        cut: Option<usize>,
    },
    /// Every request: this status and body.
    Raw(u16, Vec<u8>),
}

/// An engine on a private unix socket that answers every request as told (HTTP/1.1, one
/// request per connection).
struct FakeEngine {
    dir: tempfile::TempDir,
}

impl FakeEngine {
    fn start(answer: Answer) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ia-fake")
            .tempdir_in("/tmp")
            .unwrap();
        let l = UnixListener::bind(dir.path().join("docker.sock")).unwrap();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut c) = conn else { return };
                let answer = answer.clone();
                std::thread::spawn(move || {
                    let mut r = BufReader::new(c.try_clone().unwrap());
                    let mut first = String::new();
                    if r.read_line(&mut first).is_err() {
                        return;
                    }
                    loop {
                        let mut l = String::new();
                        if r.read_line(&mut l).unwrap_or(0) == 0 || l == "\r\n" {
                            break;
                        }
                    }
                    let path = first.split_whitespace().nth(1).unwrap_or("").to_string();
                    let (status, body, cut) = match answer {
                        Answer::Raw(s, b) => (s, b, None),
                        Answer::Image { id, archive, cut } => {
                            if path.ends_with("/json") {
                                (200, format!("{{\"Id\":\"{id}\"}}").into_bytes(), None)
                            } else {
                                (200, archive, cut)
                            }
                        }
                    };
                    let head = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = c.write_all(head.as_bytes());
                    let _ = c.write_all(&body[..cut.unwrap_or(body.len()).min(body.len())]);
                });
            }
        });
        Self { dir }
    }

    fn env(&self) -> String {
        format!("unix://{}", self.dir.path().join("docker.sock").display())
    }

    fn audit(&self, args: &[&str]) -> (Output, tempfile::TempDir) {
        let host = self.env();
        imgaudit(args, &[("DOCKER_HOST", &host)])
    }
}

/// The config digest `docker save` names in an archive's manifest.json (the image ID).
fn image_id(tar_bytes: &[u8]) -> String {
    let mut ar = tar::Archive::new(tar_bytes);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some("manifest.json") {
            let mut s = String::new();
            e.read_to_string(&mut s).unwrap();
            let v: Value = serde_json::from_str(&s).unwrap();
            let config = v[0]["Config"].as_str().unwrap();
            let hex = config
                .trim_start_matches("blobs/sha256/")
                .trim_end_matches(".json");
            return format!("sha256:{hex}");
        }
    }
    panic!("no manifest.json")
}

/// The archive with one byte of its largest member's content changed.
fn flip_in_largest_member(tar_bytes: &[u8]) -> Vec<u8> {
    let mut ar = tar::Archive::new(tar_bytes);
    let (pos, size) = ar
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.raw_file_position(), e.size())
        })
        .max_by_key(|(_, s)| *s)
        .unwrap();
    let mut out = tar_bytes.to_vec();
    // Halfway into the layer: inside its largest file (busybox), not a tar header.
    let at = (pos + size / 2) as usize;
    out[at] ^= 0x20;
    out
}

#[test]
fn hostile_engines_are_errors_and_write_nothing() {
    // A Docker 25+ archive (an OCI layout, layers named by digest) and a classic one, served
    // as an engine would stream them: reports equal the archives' own.
    for name in ["clean-docker25.tar", "real-docker-classic.tar"] {
        let bytes = std::fs::read(archive(name)).unwrap();
        let id = image_id(&bytes);
        let want = report(
            &imgaudit(
                &[
                    "-f",
                    "json",
                    &format!("docker-archive:{}", archive(name).display()),
                ],
                &[],
            )
            .0,
        );
        let fake = FakeEngine::start(Answer::Image {
            id: id.clone(),
            archive: bytes.clone(),
            cut: None,
        });
        let (o, scratch) = fake.audit(&["-f", "json", "docker-daemon:imgaudit/x"]);
        assert_eq!(report(&o), want, "{name}");
        nothing_written(scratch.path());

        // The stream breaks off in the middle.
        let fake = FakeEngine::start(Answer::Image {
            id: id.clone(),
            archive: bytes.clone(),
            cut: Some(bytes.len() / 2),
        });
        let (o, scratch) = fake.audit(&["docker-daemon:imgaudit/x"]);
        fails_with(&o, "reading the image archive");
        nothing_written(scratch.path());

        // A layer's bytes changed: its digest (layout) or diff_id (classic) does not match.
        let fake = FakeEngine::start(Answer::Image {
            id: id.clone(),
            archive: flip_in_largest_member(&bytes),
            cut: None,
        });
        let (o, scratch) = fake.audit(&["docker-daemon:imgaudit/x"]);
        fails_with(&o, "layer");
        let e = err(&o);
        assert!(
            e.contains("blob digest mismatch") || e.contains("does not match diff_id"),
            "{e}"
        );
        nothing_written(scratch.path());

        // The archive holds another image than the one inspected.
        let fake = FakeEngine::start(Answer::Image {
            id: format!("sha256:{}", "ab".repeat(32)),
            archive: bytes,
            cut: None,
        });
        let (o, _) = fake.audit(&["docker-daemon:imgaudit/x"]);
        fails_with(&o, "holds another image");
    }

    // Garbage where an image record belongs; an answer larger than the bound; an error
    // answer with the engine's message; a stream that is not a tar archive.
    let fake = FakeEngine::start(Answer::Raw(200, b"<html>hello</html>".to_vec()));
    fails_with(&fake.audit(&["docker-daemon:x"]).0, "not an image record");
    let huge = vec![b' '; (audit_core::limits::MAX_ENGINE_RESPONSE_BYTES + 1) as usize];
    let fake = FakeEngine::start(Answer::Raw(200, huge));
    fails_with(&fake.audit(&["docker-daemon:x"]).0, "larger than");
    let fake = FakeEngine::start(Answer::Raw(
        500,
        br#"{"message":"boom\nsecond line"}"#.to_vec(),
    ));
    fails_with(&fake.audit(&["docker-daemon:x"]).0, "HTTP 500: boom");
    let fake = FakeEngine::start(Answer::Image {
        id: format!("sha256:{}", "ab".repeat(32)),
        archive: vec![0x42; 4096],
        cut: None,
    });
    let (o, scratch) = fake.audit(&["docker-daemon:x"]);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    nothing_written(scratch.path());
    // Names that would change the request path are refused before anything is sent.
    fails_with(
        &fake.audit(&["docker-daemon:../../containers/json"]).0,
        "not an image name",
    );
}

#[test]
fn engine_sources_are_listed_in_help() {
    let (o, _) = imgaudit(&["--help"], &[]);
    let out = String::from_utf8_lossy(&o.stdout);
    for t in [
        "docker-daemon:NAME",
        "podman:NAME",
        "containers-storage:NAME",
        "containerd:NAME",
    ] {
        assert!(out.contains(t), "{t} not in --help");
    }
}
