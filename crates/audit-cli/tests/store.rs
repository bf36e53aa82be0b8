//! The layer store through the built binary: the disk store (cold, warm and `--no-cache`
//! reports identical; concurrent processes; a writer killed with SIGKILL; damaged entries;
//! the size bound), a real `redis-server` (shared entries, forged values, Redis killed during
//! audits, the password kept out of output), and incremental registry audits against the real
//! distribution registry (a warm audit pulls no layer blob).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use std::time::Duration;

use support::{err, fixture, imgaudit, key_file, out, Proxy, Redis, Registry};

/// Fixture images with Go binaries, secrets, several platforms, zstd and v2s2 layers.
const IMAGES: &[&str] = &[
    "clean",
    "clean-multiarch",
    "clean-zstd",
    "clean-v2s2",
    "go-rules",
    "sec-rules",
    "fs-rules",
    "real-buildah-layers",
];

fn run(image: &Path, cache: &[&str], format: &str) -> (String, String) {
    let mut args = vec!["-q", "--all-platforms", "--profile", "auto", "-f", format];
    args.extend_from_slice(cache);
    let p = image.display().to_string();
    args.push(&p);
    let o = imgaudit(&args, &[]);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", err(&o));
    (out(&o), err(&o))
}

/// A `-v` run (its log tells which layers were analysed and which came from the store).
fn verbose(image: &Path, cache: &[&str]) -> std::process::Output {
    let mut args = vec!["-v", "--all-platforms", "--profile", "auto", "-f", "json"];
    args.extend_from_slice(cache);
    let p = image.display().to_string();
    args.push(&p);
    imgaudit(&args, &[])
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for sub in std::fs::read_dir(dir.join("layers")).unwrap().flatten() {
        for e in std::fs::read_dir(sub.path()).unwrap().flatten() {
            if e.file_name().to_string_lossy().starts_with("layer_") {
                v.push(e.path());
            }
        }
    }
    v
}

#[test]
fn cold_warm_and_uncached_reports_are_identical() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("c");
    let dir_s = dir.display().to_string();
    for name in IMAGES {
        let img = fixture(name);
        for format in ["json", "text"] {
            let (plain, _) = run(&img, &["--no-cache"], format);
            let (cold, _) = run(&img, &["--cache-dir", &dir_s], format);
            let (warm, _) = run(&img, &["--cache-dir", &dir_s], format);
            assert!(
                plain == cold,
                "{name} {format}: cold differs from --no-cache"
            );
            assert!(
                plain == warm,
                "{name} {format}: warm differs from --no-cache"
            );
        }
    }
    assert!(!entries(&dir).is_empty());
    // The warm run read every layer from the store.
    let o = verbose(&fixture("go-rules"), &["--cache-dir", &dir_s]);
    let e = err(&o);
    assert!(e.contains("layer analysis from the store"), "{e}");
    assert!(!e.contains("layer analysed"), "{e}");

    // Damaged entries: truncated and bit-flipped files are misses, replaced, and the report
    // stays the same.
    let img = fixture("go-rules");
    let (before, _) = run(&img, &["--no-cache"], "json");
    for (i, p) in entries(&dir).iter().enumerate() {
        let mut b = std::fs::read(p).unwrap();
        if i % 2 == 0 {
            b.truncate(b.len() / 2);
        } else {
            let n = b.len() - 7;
            b[n] ^= 0x10;
        }
        std::fs::write(p, b).unwrap();
    }
    let (after, _) = run(&img, &["--cache-dir", &dir_s], "json");
    assert!(before == after, "damaged entries changed the report");
    let o = imgaudit(&["cache", "prune", "--cache-dir", &dir_s], &[]);
    assert!(o.status.success(), "{}", err(&o));
    let o = imgaudit(&["cache", "info", "--cache-dir", &dir_s], &[]);
    assert!(out(&o).contains("entries:"), "{}", out(&o));
    let o = imgaudit(&["cache", "clear", "--cache-dir", &dir_s], &[]);
    assert!(out(&o).starts_with("removed "), "{}", out(&o));
    assert!(entries(&dir).is_empty());
}

#[test]
fn concurrent_processes_and_a_killed_writer_leave_a_usable_store() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("c");
    let dir_s = dir.display().to_string();
    let img = fixture("go-rules").display().to_string();
    let spawn = |extra: &[&str]| -> Child {
        Command::new(env!("CARGO_BIN_EXE_imgaudit"))
            .args(["-q", "--all-platforms", "--profile", "auto", "-f", "json"])
            .args(["--cache-dir", &dir_s])
            .args(extra)
            .arg(&img)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (plain, _) = run(Path::new(&img), &["--no-cache"], "json");
    // Writers killed at several points of their run.
    for ms in [50, 200, 400, 800] {
        let mut c = spawn(&[]);
        std::thread::sleep(Duration::from_millis(ms));
        assert!(Command::new("kill")
            .args(["-KILL", &c.id().to_string()])
            .status()
            .unwrap()
            .success());
        let _ = c.wait();
    }
    // Three processes at once on the same directory.
    let kids: Vec<Child> = (0..3).map(|_| spawn(&[])).collect();
    for k in kids {
        let o = k.wait_with_output().unwrap();
        assert!(matches!(o.status.code(), Some(0 | 1)), "{}", err(&o));
        assert!(out(&o) == plain, "a concurrent run differs");
    }
    // Every entry left decodes (prune removes only stale temporary files, none younger).
    let o = imgaudit(&["cache", "prune", "--cache-dir", &dir_s], &[]);
    assert!(
        out(&o).starts_with("removed 0 entries"),
        "{}{}",
        out(&o),
        err(&o)
    );
    let (warm, _) = run(Path::new(&img), &["--cache-dir", &dir_s], "json");
    assert!(warm == plain, "the warm run differs");
}

#[test]
fn the_size_bound_holds() {
    let d = tempfile::tempdir().unwrap();
    let dir_s = d.path().display().to_string();
    let bound = 200_000;
    for name in ["clean", "go-rules", "sec-rules", "fs-rules"] {
        let (_, e) = run(
            &fixture(name),
            &[
                "--cache-dir",
                &dir_s,
                "--cache-max-bytes",
                &bound.to_string(),
            ],
            "json",
        );
        let bytes: u64 = entries(d.path())
            .iter()
            .map(|p| p.metadata().unwrap().len())
            .sum();
        assert!(bytes <= bound, "{name}: {bytes} > {bound} {e}");
    }
}

#[test]
fn redis_store_is_shared_and_forged_values_are_ignored() {
    let redis = Redis::start(None);
    let d = tempfile::tempdir().unwrap();
    let key = key_file(d.path());
    let url = redis.url();
    let img = fixture("go-rules");
    let args = ["--cache", url.as_str(), "--cache-key-file", key.as_str()];
    let (plain, _) = run(&img, &["--no-cache"], "json");
    let (cold, _) = run(&img, &args, "json");
    assert!(cold == plain, "cold Redis run differs");
    let keys = redis.cli(&["--scan", "--pattern", "imgaudit::layer:*"]);
    let keys: Vec<&str> = keys.lines().collect();
    assert!(!keys.is_empty());
    let ttl: i64 = redis.cli(&["TTL", keys[0]]).trim().parse().unwrap();
    assert!(ttl > 0, "entries have a TTL");
    let o = verbose(&img, &["--cache", &url, "--cache-key-file", &key]);
    assert!(out(&o) == plain, "warm Redis run differs");
    assert!(!err(&o).contains("layer analysed"), "{}", err(&o));

    // Forged values: garbage, an entry sealed with another key, a 100 MiB value.
    let other = d.path().join("other-key");
    std::fs::write(&other, "another key, 32 bytes long.....").unwrap();
    let other = other.display().to_string();
    redis.cli(&["FLUSHALL"]);
    let (_, _) = run(&img, &["--cache", &url, "--cache-key-file", &other], "json");
    let forged = redis.cli(&["--scan", "--pattern", "imgaudit::layer:*"]);
    let forged: Vec<String> = forged.lines().map(String::from).collect();
    assert!(forged.len() >= 2);
    redis.cli(&["SET", &forged[0], "garbage"]);
    let big = d.path().join("big");
    std::fs::write(&big, vec![b'x'; 100 << 20]).unwrap();
    let o = Command::new("redis-cli")
        .args(["-p", &redis.port.to_string(), "-x", "SET", &forged[1]])
        .stdin(std::fs::File::open(&big).unwrap())
        .output()
        .unwrap();
    assert!(o.status.success());
    let o = verbose(&img, &["--cache", &url, "--cache-key-file", &key]);
    assert!(out(&o) == plain, "forged entries changed the report");
    let analysed = err(&o).matches("layer analysed").count();
    assert_eq!(
        analysed,
        forged.len(),
        "every forged entry is a miss: {}",
        err(&o)
    );
    // ... and was replaced by a good one.
    let o = verbose(&img, &["--cache", &url, "--cache-key-file", &key]);
    assert_eq!(err(&o).matches("layer analysed").count(), 0, "{}", err(&o));
}

#[test]
fn redis_down_or_killed_costs_nothing_but_time_and_the_password_stays_hidden() {
    let d = tempfile::tempdir().unwrap();
    let key = key_file(d.path());
    let img = fixture("go-rules");
    let (plain, _) = run(&img, &["--no-cache"], "json");
    // Nothing listens there.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let secret = "hunter2-redis-secret";
    let url = format!("redis://:{secret}@127.0.0.1:{dead}/0");
    let started = std::time::Instant::now();
    let o = verbose(&img, &["--cache", &url, "--cache-key-file", &key]);
    assert!(out(&o) == plain, "report with a dead Redis differs");
    assert!(started.elapsed() < Duration::from_secs(30));
    let e = err(&o);
    assert_eq!(
        e.matches("Redis unavailable").count(),
        1,
        "logged once: {e}"
    );
    assert!(!e.contains(secret), "{e}");

    // A wrong password on a real server: refused, logged without the password.
    let redis = Redis::start(Some("the-right-one"));
    let url = format!("redis://:{secret}@127.0.0.1:{}/0", redis.port);
    let o = verbose(&img, &["--cache", &url, "--cache-key-file", &key]);
    assert!(out(&o) == plain, "report with a refused Redis differs");
    assert!(!err(&o).contains(secret), "{}", err(&o));
    assert!(err(&o).contains("Redis unavailable"), "{}", err(&o));
    drop(redis);

    // Redis killed while several audits run against it: all complete, identical.
    let mut redis = Redis::start(None);
    let url = redis.url();
    let kids: Vec<Child> = ["go-rules", "fs-rules", "sec-rules", "go-rules"]
        .iter()
        .map(|n| {
            Command::new(env!("CARGO_BIN_EXE_imgaudit"))
                .args([
                    "-q",
                    "--all-platforms",
                    "--profile",
                    "auto",
                    "-f",
                    "json",
                    "--cache",
                    &url,
                    "--cache-key-file",
                    &key,
                ])
                .arg(fixture(n))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    redis.kill();
    for (k, n) in kids
        .into_iter()
        .zip(["go-rules", "fs-rules", "sec-rules", "go-rules"])
    {
        let o = k.wait_with_output().unwrap();
        assert!(matches!(o.status.code(), Some(0 | 1)), "{n}: {}", err(&o));
        assert!(
            out(&o) == run(&fixture(n), &["--no-cache"], "json").0,
            "{n}: differs after Redis was killed"
        );
    }
}

#[test]
fn a_warm_registry_audit_pulls_manifest_and_config_only() {
    let reg = Registry::plain();
    reg.push(&fixture("go-rules"), "store/go-rules:1", &[]);
    reg.push(&fixture("fs-rules"), "store/fs-rules:1", &[]);
    let proxy = Proxy::start(reg.port, u64::MAX, Box::new(|| {}));
    let image = format!("127.0.0.1:{}/store/go-rules:1", proxy.port);
    let insecure = format!("127.0.0.1:{}", proxy.port);
    let d = tempfile::tempdir().unwrap();
    let dir_s = d.path().display().to_string();
    let audit_of = |image: &str, cache: &[&str]| {
        let before = proxy.relayed.load(std::sync::atomic::Ordering::SeqCst);
        let mut args = vec!["-f", "json", "--insecure", insecure.as_str()];
        args.extend_from_slice(cache);
        args.push(image);
        let o = imgaudit(&args, &[]);
        assert!(matches!(o.status.code(), Some(0 | 1)), "{}", err(&o));
        let bytes = proxy.relayed.load(std::sync::atomic::Ordering::SeqCst) - before;
        (out(&o), bytes)
    };
    let audit = |cache: &[&str]| audit_of(&image, cache);
    let (plain, uncached) = audit(&["--no-cache"]);
    let (cold, cold_bytes) = audit(&["--cache-dir", &dir_s]);
    let (warm, warm_bytes) = audit(&["--cache-dir", &dir_s]);
    assert!(plain == cold && plain == warm, "registry reports differ");
    let layers: u64 = serde_json::from_str::<serde_json::Value>(&plain).unwrap()["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .sum();
    assert!(uncached > layers && cold_bytes > layers);
    // Manifest + config (and the HTTP around them): a few KiB, no layer bytes.
    assert!(
        warm_bytes < 64 << 10 && warm_bytes < layers / 10,
        "warm audit relayed {warm_bytes} bytes (layers: {layers})"
    );

    // An image sharing some layers with the stored one: only the missing layers are pulled.
    let sizes = |report: &str| -> std::collections::BTreeMap<String, u64> {
        serde_json::from_str::<serde_json::Value>(report).unwrap()["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (l["digest"].to_string(), l["size"].as_u64().unwrap()))
            .collect()
    };
    let fs = format!("{insecure}/store/fs-rules:1");
    let (fs_plain, fs_uncached) = audit_of(&fs, &["--no-cache"]);
    let (fs_warm, fs_bytes) = audit_of(&fs, &["--cache-dir", &dir_s]);
    assert!(fs_plain == fs_warm, "partially warm report differs");
    let stored = sizes(&plain);
    let (shared, missing): (Vec<u64>, Vec<u64>) = {
        let all = sizes(&fs_plain);
        let shared = all
            .iter()
            .filter(|(d, _)| stored.contains_key(*d))
            .map(|(_, n)| *n);
        let missing = all
            .iter()
            .filter(|(d, _)| !stored.contains_key(*d))
            .map(|(_, n)| *n);
        (shared.collect(), missing.collect())
    };
    assert!(
        !shared.is_empty() && !missing.is_empty(),
        "the images share some layers, not all"
    );
    let (shared, missing): (u64, u64) = (shared.iter().sum(), missing.iter().sum());
    assert!(
        fs_bytes >= missing && fs_uncached.saturating_sub(fs_bytes) >= shared,
        "partially warm audit relayed {fs_bytes} bytes, uncached {fs_uncached}; missing layers: {missing}, stored: {shared}"
    );
}
