//! `imgaudit sweep` against the real distribution registry holding 24 references (8 fixture
//! images sharing their base layers, pushed by skopeo under several repositories and tags),
//! behind a byte-counting proxy: the catalog and tags are listed, each manifest is audited
//! once and each unique layer analysed (and pulled) exactly once; every line is the image's
//! `--format json` report; two shards sharing a Redis store cover every manifest exactly once
//! and a later sweep on that store pulls no layer; a resumed sweep skips what was reported; a
//! missing image is a failure in the summary, not the end of the sweep.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::Ordering;

use support::{err, fixture, imgaudit, key_file, out, Proxy, Redis, Registry};

const IMAGES: [&str; 8] = [
    "clean",
    "go-rules",
    "fs-rules",
    "sec-rules",
    "musl",
    "dl-base",
    "cfg-root",
    "hist-rules",
];

fn lines(o: &std::process::Output) -> Vec<serde_json::Value> {
    out(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn summary(o: &std::process::Output) -> serde_json::Value {
    let e = err(o);
    let start = e.find("{\n").unwrap_or_else(|| panic!("no summary: {e}"));
    serde_json::from_str(&e[start..]).unwrap_or_else(|x| panic!("{x}: {e}"))
}

fn n(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// A layout's manifest (first of its index) as JSON.
fn manifest(layout: &Path) -> serde_json::Value {
    let blob = |d: &str| {
        let p = layout
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"));
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(p).unwrap()).unwrap()
    };
    let index = serde_json::from_slice::<serde_json::Value>(
        &std::fs::read(layout.join("index.json")).unwrap(),
    )
    .unwrap();
    blob(index["manifests"][0]["digest"].as_str().unwrap())
}

#[test]
fn sweep_audits_each_manifest_and_layer_once_sharded_and_resumable() {
    let reg = Registry::plain();
    let mut refs = Vec::new();
    for (i, name) in IMAGES.iter().enumerate() {
        for r in [
            format!("team{}/{name}:1", i % 2),
            format!("team{}/{name}:2", i % 2),
            format!("mirror/{name}:1"),
        ] {
            reg.push(&fixture(name), &r, &[]);
            refs.push(r);
        }
    }
    assert!(refs.len() >= 20);
    // What the sweep must pull, from the layouts: each unique layer and each config once.
    let (mut layers, mut configs) = (BTreeMap::new(), BTreeMap::new());
    let mut listed = 0u64;
    for name in IMAGES {
        let m = manifest(&fixture(name));
        configs.insert(m["config"]["digest"].to_string(), n(&m["config"]["size"]));
        for l in m["layers"].as_array().unwrap() {
            layers.insert(l["digest"].to_string(), n(&l["size"]));
            listed += 1;
        }
    }
    let must_pull: u64 = layers.values().sum::<u64>() + configs.values().sum::<u64>();

    // The whole registry through its catalog, behind a proxy counting the bytes it relays.
    let proxy = Proxy::start(reg.port, u64::MAX, Box::new(|| {}));
    let host = format!("127.0.0.1:{}", proxy.port);
    let d = tempfile::tempdir().unwrap();
    let o = imgaudit(
        &[
            "sweep",
            "--no-cache",
            "--insecure",
            &host,
            "--parallel",
            "4",
            &host,
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let reports = lines(&o);
    let all = out(&o);
    let s = summary(&o);
    assert_eq!(n(&s["references"]) as usize, refs.len(), "{s}");
    assert_eq!(n(&s["manifests"]) as usize, IMAGES.len(), "{s}");
    assert_eq!(
        reports.len(),
        IMAGES.len(),
        "one report per distinct manifest"
    );
    assert_eq!(n(&s["layers_listed"]), listed, "{s}");
    assert_eq!(
        n(&s["layers_analysed"]) as usize,
        layers.len(),
        "every unique layer analysed exactly once: {s}"
    );
    assert_eq!(
        n(&s["layers_from_store"]),
        listed - layers.len() as u64,
        "{s}"
    );
    assert_eq!(
        n(&s["bytes_pulled"]),
        must_pull,
        "each layer and config pulled once: {s}"
    );
    let relayed = proxy.relayed.load(Ordering::SeqCst);
    assert!(
        relayed >= must_pull,
        "the wire carried {relayed} bytes < {must_pull}"
    );
    assert!(s["failures"].as_array().unwrap().is_empty(), "{s}");
    // Each line is exactly the `--format json` report of that image.
    for (r, line) in reports.iter().zip(all.lines()).take(2) {
        let pinned = r["image"]["reference"].as_str().unwrap();
        let one = imgaudit(
            &["-f", "json", "--no-cache", "--insecure", &host, pinned],
            &[],
        );
        assert_eq!(out(&one).trim_end(), line);
    }

    // Two shards at once on one Redis store, as the pods of an Indexed Job (the second from
    // the Job's environment): every manifest exactly once, and a later sweep on the same
    // store analyses and pulls no layer.
    let redis = Redis::start(None);
    let key = key_file(d.path());
    let cache = ["--cache", &redis.url(), "--cache-key-file", &key];
    let shard = |extra: &[&str], env: &[(&str, &str)]| {
        let mut a = vec!["sweep", "--insecure", host.as_str(), host.as_str()];
        a.extend_from_slice(&cache);
        a.extend_from_slice(extra);
        let a: Vec<String> = a.iter().map(|s| s.to_string()).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        std::thread::spawn(move || {
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            imgaudit(&a, &env)
        })
    };
    let shards = [
        shard(&["--shard", "0/2"], &[]),
        shard(
            &[],
            &[("JOB_COMPLETION_INDEX", "1"), ("JOB_COMPLETIONS", "2")],
        ),
    ];
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, h) in shards.into_iter().enumerate() {
        let o = h.join().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", err(&o));
        assert_eq!(summary(&o)["shard"], format!("{i}/2"));
        for r in lines(&o) {
            *seen
                .entry(r["image"]["manifest_digest"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    assert_eq!(seen.len(), IMAGES.len(), "{seen:?}");
    assert!(seen.values().all(|&n| n == 1), "{seen:?}");
    let mut a = vec!["sweep", "--insecure", host.as_str(), host.as_str()];
    a.extend_from_slice(&cache);
    let o = imgaudit(&a, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let warm = summary(&o);
    assert_eq!(n(&warm["layers_analysed"]), 0, "{warm}");
    assert_eq!(
        n(&warm["bytes_pulled"]),
        configs.values().sum::<u64>(),
        "{warm}"
    );
    let sorted = |t: &str| t.lines().map(str::to_string).collect::<BTreeSet<_>>();
    assert_eq!(
        sorted(&out(&o)),
        sorted(&all),
        "the shared store changes no report"
    );

    // Resume: a file holding three reports and a line cut by a killed run.
    let done = d.path().join("done.jsonl");
    let half: Vec<&str> = all.lines().take(3).collect();
    std::fs::write(&done, half.join("\n") + "\n{\"schema_version\": 1, \"ima").unwrap();
    let summary_file = d.path().join("summary.json");
    let done_s = done.display().to_string();
    let summary_s = summary_file.display().to_string();
    let repo = format!("{host}/mirror/clean");
    let list = d.path().join("list.txt");
    std::fs::write(
        &list,
        format!("# repositories\n{host}/team0\n{host}/team1/go-rules:1\n"),
    )
    .unwrap();
    let o = imgaudit(
        &[
            "sweep",
            "--no-cache",
            "--insecure",
            &host,
            &host,
            "--resume",
            &done_s,
            "--summary",
            &summary_s,
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary_file).unwrap()).unwrap();
    assert_eq!(n(&s["resumed"]), 3, "{s}");
    let rest: BTreeSet<String> = lines(&o).iter().map(|r| r.to_string()).collect();
    let before: BTreeSet<String> = half.iter().map(|l| l.to_string()).collect();
    assert_eq!(rest.len(), IMAGES.len() - 3);
    assert!(rest.is_disjoint(&before));

    // A repository (every tag), an image from --list, and one that does not exist: a
    // failure in the summary, not the end of the sweep.
    let o = imgaudit(
        &[
            "sweep",
            "--no-cache",
            "--insecure",
            &host,
            &repo,
            &format!("{host}/nope/missing:1"),
            "--list",
            &list.display().to_string(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    let s = summary(&o);
    let failures = s["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 2, "{s}");
    assert!(
        failures
            .iter()
            .any(|f| f["image"].as_str().unwrap().contains("nope/missing")),
        "{s}"
    );
    assert!(
        failures
            .iter()
            .any(|f| f["image"].as_str().unwrap().ends_with("/team0")),
        "{s}"
    );
    assert_eq!(lines(&o).len(), 2, "mirror/clean and team1/go-rules: {s}");
}

/// The Indexed Job of deploy/ runs `imgaudit sweep` with flags it has.
#[test]
fn the_job_manifest_uses_existing_flags() {
    let job = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/sweep-job.yaml"),
    )
    .unwrap();
    assert!(job.contains("completionMode: Indexed"));
    assert!(job.contains("command: [/usr/local/bin/imgaudit, sweep]"));
    let help = out(&imgaudit(&["sweep", "--help"], &[]));
    let flags: Vec<&str> = job
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- --"))
        .map(|f| f.split(['=', ' ']).next().unwrap())
        .collect();
    assert!(flags.len() >= 4, "{flags:?}");
    for f in flags {
        assert!(
            help.contains(&format!("--{f}")),
            "--{f} is not a sweep flag"
        );
    }
}
