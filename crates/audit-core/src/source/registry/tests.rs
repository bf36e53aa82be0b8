//! The registry client against an in-process loopback server with hostile modes: the faults
//! the real registry cannot produce (429 + Retry-After, 5xx, truncated and dripping bodies,
//! huge `Content-Length`, silence), the Bearer token flow, and the bounds of
//! [`RegistryLimits`]. The happy paths run against the real registry in
//! `crates/audit-cli/tests/registry.rs`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;
use crate::limits::{MAX_LIST_ENTRIES, MAX_LIST_PAGE_BYTES, REGISTRY_LIST_PAGE_SIZE};
use crate::source::options::{RegistryAuth, Secret};

struct Req {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: String,
}

enum Resp {
    Full(u16, Vec<(String, String)>, Vec<u8>),
    /// Announces the whole body, sends `n` bytes, closes.
    Truncated(Vec<u8>, usize),
    /// Sends the body one byte per interval.
    Drip(Vec<u8>, Duration),
    /// Sends headers, then nothing, for this long.
    Silent(Duration),
    /// Accepts and never answers.
    Hang(Duration),
}

fn ok(body: &[u8]) -> Resp {
    Resp::Full(200, vec![], body.to_vec())
}

type Handler = dyn Fn(&Req, usize) -> Resp + Send + Sync;

/// Serves one response per connection (`Connection: close`); `handler` also gets the number
/// of requests so far for the same path.
fn server(
    handler: impl Fn(&Req, usize) -> Resp + Send + Sync + 'static,
) -> (u16, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let log = Arc::new(Mutex::new(Vec::new()));
    let counts = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
    let handler: Arc<Handler> = Arc::new(handler);
    let log2 = Arc::clone(&log);
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { continue };
            let (handler, log, counts) =
                (Arc::clone(&handler), Arc::clone(&log2), Arc::clone(&counts));
            std::thread::spawn(move || serve(c, &*handler, &log, &counts));
        }
    });
    (port, log)
}

fn serve(
    c: TcpStream,
    handler: &Handler,
    log: &Mutex<Vec<String>>,
    counts: &Mutex<HashMap<String, usize>>,
) {
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut line = String::new();
    if r.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let mut body = vec![
        0;
        headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    ];
    let _ = r.read_exact(&mut body);
    let req = Req {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let n = {
        let mut m = counts.lock().unwrap();
        let k = m
            .entry(req.path.split('?').next().unwrap_or("").to_string())
            .or_default();
        *k += 1;
        *k
    };
    log.lock().unwrap().push(format!(
        "{} {} auth={}",
        req.method,
        req.path,
        req.headers
            .get("authorization")
            .map_or("-", |a| a.split(' ').next().unwrap_or("?"))
    ));
    let mut w = c;
    let head = |status: u16, extra: &[(String, String)], len: usize| {
        let mut h =
            format!("HTTP/1.1 {status} X\r\nConnection: close\r\nContent-Length: {len}\r\n");
        for (k, v) in extra {
            h += &format!("{k}: {v}\r\n");
        }
        h + "\r\n"
    };
    match handler(&req, n) {
        Resp::Full(st, hs, b) => {
            let len = hs
                .iter()
                .find(|(k, _)| k == "Content-Length")
                .map(|_| None)
                .unwrap_or(Some(b.len()));
            let mut h = head(st, &hs, len.unwrap_or(0));
            if len.is_none() {
                h = h.replacen("Content-Length: 0\r\n", "", 1);
            }
            let _ = w.write_all(h.as_bytes());
            let _ = w.write_all(&b);
        }
        Resp::Truncated(b, n) => {
            let _ = w.write_all(head(200, &[], b.len()).as_bytes());
            let _ = w.write_all(&b[..n]);
        }
        Resp::Drip(b, every) => {
            let _ = w.write_all(head(200, &[], b.len()).as_bytes());
            for x in b {
                if w.write_all(&[x]).is_err() {
                    return;
                }
                std::thread::sleep(every);
            }
        }
        Resp::Silent(d) => {
            let _ = w.write_all(head(200, &[], BLOB.len()).as_bytes());
            std::thread::sleep(d);
        }
        Resp::Hang(d) => std::thread::sleep(d),
    }
    let _ = w.flush();
}

fn fast() -> RegistryLimits {
    RegistryLimits {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(2),
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        ..RegistryLimits::default()
    }
}

fn store_with(port: u16, limits: RegistryLimits, auth: Option<RegistryAuth>) -> RegistryStore {
    let host = format!("127.0.0.1:{port}");
    let mut o = SourceOptions::new().insecure_host(&host).limits(limits);
    if let Some(a) = auth {
        o = o.credentials(Arc::new(a));
    }
    RegistryStore::new(
        ImageReference::parse(&format!("{host}/ns/app:v1")).unwrap(),
        &o,
    )
    .unwrap()
}

const BLOB: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz";

fn blob_desc() -> Descriptor {
    Descriptor {
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        digest: Digest::sha256_of(BLOB),
        size: BLOB.len() as u64,
        platform: None,
        annotations: Default::default(),
        urls: Vec::new(),
    }
}

fn read_blob(s: &RegistryStore) -> Result<Vec<u8>, String> {
    let mut r = s.open(&blob_desc()).map_err(|e| e.to_string())?;
    let mut v = Vec::new();
    r.read_to_end(&mut v).map_err(|e| e.to_string())?;
    Ok(v)
}

/// `/v2/` answers 200; blobs through `blob`.
fn registry(
    blob: impl Fn(&Req, usize) -> Resp + Send + Sync + 'static,
) -> (u16, Arc<Mutex<Vec<String>>>) {
    server(move |req, n| {
        if req.path == "/v2/" {
            ok(b"{}")
        } else {
            blob(req, n)
        }
    })
}

#[test]
fn retries_429_honouring_retry_after() {
    let (port, _) = registry(|_, n| {
        if n == 1 {
            Resp::Full(429, vec![("Retry-After".into(), "1".into())], vec![])
        } else {
            ok(BLOB)
        }
    });
    let t = Instant::now();
    assert_eq!(read_blob(&store_with(port, fast(), None)).unwrap(), BLOB);
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "waited as asked: {:?}",
        t.elapsed()
    );
}

#[test]
fn retry_after_past_the_bound_fails_at_once() {
    let (port, _) =
        registry(|_, _| Resp::Full(429, vec![("Retry-After".into(), "3600".into())], vec![]));
    let t = Instant::now();
    let e = read_blob(&store_with(port, fast(), None)).unwrap_err();
    assert!(
        e.contains("rate limited (HTTP 429, retry after 3600 s)"),
        "{e}"
    );
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[test]
fn server_errors_are_retried_then_reported() {
    let (port, log) = registry(|_, n| {
        if n < 3 {
            Resp::Full(503, vec![], vec![])
        } else {
            ok(BLOB)
        }
    });
    assert_eq!(read_blob(&store_with(port, fast(), None)).unwrap(), BLOB);
    assert_eq!(
        log.lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("/blobs/"))
            .count(),
        3
    );
    let (port, log) = registry(|_, _| Resp::Full(502, vec![], vec![]));
    let e = read_blob(&store_with(port, fast(), None)).unwrap_err();
    assert!(
        e.contains("HTTP 502") && e.contains("after 5 attempts"),
        "{e}"
    );
    assert_eq!(
        log.lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("/blobs/"))
            .count(),
        crate::limits::REGISTRY_MAX_ATTEMPTS as usize
    );
}

#[test]
fn truncated_body_is_resumed_with_range() {
    let (port, log) = registry(|req, n| {
        if n == 1 {
            return Resp::Truncated(BLOB.to_vec(), 20);
        }
        let from: usize = req
            .headers
            .get("range")
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.trim_end_matches('-').parse().ok())
            .unwrap_or(0);
        Resp::Full(
            206,
            vec![(
                "Content-Range".into(),
                format!("bytes {from}-{}/{}", BLOB.len() - 1, BLOB.len()),
            )],
            BLOB[from..].to_vec(),
        )
    });
    assert_eq!(read_blob(&store_with(port, fast(), None)).unwrap(), BLOB);
    assert_eq!(
        log.lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("/blobs/"))
            .count(),
        2
    );
}

#[test]
fn truncated_body_with_range_ignored_restarts_and_skips() {
    let (port, _) = registry(|_, n| {
        if n == 1 {
            Resp::Truncated(BLOB.to_vec(), 30)
        } else {
            ok(BLOB)
        }
    });
    assert_eq!(read_blob(&store_with(port, fast(), None)).unwrap(), BLOB);
}

#[test]
fn always_truncated_body_gives_up() {
    let (port, _) = registry(|_, _| Resp::Truncated(BLOB.to_vec(), 10));
    let e = read_blob(&store_with(port, fast(), None)).unwrap_err();
    assert!(e.contains("after 5 attempts"), "{e}");
}

#[test]
fn huge_content_length_is_refused_before_reading() {
    let huge = vec![("Content-Length".into(), "999999999999999".into())];
    let h2 = huge.clone();
    let (port, _) = registry(move |_, _| Resp::Full(200, h2.clone(), vec![]));
    let e = read_blob(&store_with(port, fast(), None)).unwrap_err();
    assert!(
        e.contains("announces 999999999999999 bytes, the descriptor says 72"),
        "{e}"
    );
    let (port, _) = registry(move |_, _| Resp::Full(200, huge.clone(), vec![]));
    let e = store_with(port, fast(), None).root().unwrap_err();
    assert!(
        matches!(e, SourceError::TooLarge { limit, .. } if limit == MAX_MANIFEST_BYTES),
        "{e}"
    );
}

#[test]
fn slow_drip_trips_the_throughput_floor() {
    let limits = RegistryLimits {
        rate_window: Duration::from_millis(200),
        min_bytes_per_sec: 1000,
        max_attempts: 2,
        ..fast()
    };
    let (port, _) = registry(|_, _| Resp::Drip(BLOB.to_vec(), Duration::from_millis(20)));
    let t = Instant::now();
    let e = read_blob(&store_with(port, limits, None)).unwrap_err();
    assert!(
        e.contains("transfer slower than 1000 bytes/s") && e.contains("after 2 attempts"),
        "{e}"
    );
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

#[test]
fn silence_trips_the_idle_timeout() {
    let limits = RegistryLimits {
        idle_timeout: Duration::from_millis(200),
        max_attempts: 2,
        ..fast()
    };
    let (port, _) = registry(|_, _| Resp::Silent(Duration::from_secs(5)));
    let e = read_blob(&store_with(port, limits, None)).unwrap_err();
    assert!(
        e.contains("no data for") && e.contains("after 2 attempts"),
        "{e}"
    );
}

#[test]
fn overall_timeout_bounds_a_hanging_registry() {
    let limits = RegistryLimits {
        total_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_secs(30),
        ..fast()
    };
    let (port, _) = server(|_, _| Resp::Hang(Duration::from_secs(10)));
    let t = Instant::now();
    let e = store_with(port, limits, None).root().unwrap_err();
    assert!(matches!(e, SourceError::Timeout { .. }), "{e}");
    assert!(t.elapsed() < Duration::from_secs(3));
}

#[test]
fn connection_refused_is_unreachable() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = store_with(port, fast(), None).root().unwrap_err();
    assert!(matches!(e, SourceError::Unreachable { .. }), "{e}");
    assert!(
        e.to_string().contains("unreachable") && e.to_string().contains("after 5 attempts"),
        "{e}"
    );
}

/// A registry whose `/v2/` and manifests demand a Bearer token from its own `/token`.
type Log = Arc<Mutex<Vec<String>>>;

fn token_registry(accept: impl Fn(&Req) -> bool + Send + Sync + 'static) -> (u16, Log, Log) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = Arc::clone(&seen);
    let port_cell = Arc::new(AtomicUsize::new(0));
    let pc = Arc::clone(&port_cell);
    let (port, log) = server(move |req, _| {
        let port = pc.load(Ordering::SeqCst);
        if req.path.starts_with("/token") {
            seen2
                .lock()
                .unwrap()
                .push(format!("{} {} {}", req.method, req.path, req.body));
            return if accept(req) {
                ok(br#"{"access_token":"tok-123","expires_in":300}"#)
            } else {
                Resp::Full(401, vec![], vec![])
            };
        }
        if req.headers.get("authorization").map(String::as_str) != Some("Bearer tok-123") {
            let scope = if req.path == "/v2/" {
                String::new()
            } else {
                ",scope=\"repository:ns/app:pull\"".into()
            };
            let ch = format!(
                "Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"test-registry\"{scope}"
            );
            return Resp::Full(
                401,
                vec![("WWW-Authenticate".into(), ch)],
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#
                    .to_vec(),
            );
        }
        if req.path.contains("/manifests/") {
            return Resp::Full(403, vec![], vec![]);
        }
        ok(BLOB)
    });
    port_cell.store(port as usize, Ordering::SeqCst);
    (port, log, seen)
}

#[test]
fn bearer_token_flow_with_basic_credentials() {
    let basic = format!("Basic {}", {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode("alice:hunter2")
    });
    let (port, log, tokens) =
        token_registry(move |r| r.headers.get("authorization") == Some(&basic));
    let s = store_with(
        port,
        fast(),
        Some(RegistryAuth::Basic {
            username: "alice".into(),
            password: Secret::new("hunter2"),
        }),
    );
    assert_eq!(read_blob(&s).unwrap(), BLOB);
    let t = tokens.lock().unwrap().clone();
    assert_eq!(t.len(), 1, "{t:?}");
    assert!(
        t[0].starts_with("GET /token?service=test-registry&scope=repository%3Ans%2Fapp%3Apull"),
        "{t:?}"
    );
    // The token is reused: one token fetch, then the blob with Bearer.
    assert!(log
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("/blobs/") && l.ends_with("auth=Bearer")));
    // 403 is its own error.
    let e = s.root().unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("127.0.0.1:{port}: access to ns/app denied (HTTP 403)")
    );
}

#[test]
fn identity_tokens_are_exchanged_with_a_refresh_grant() {
    let (port, _, tokens) = token_registry(|r| {
        r.method == "POST"
            && r.body.contains("grant_type=refresh_token")
            && r.body.contains("refresh_token=idt-secret")
    });
    let s = store_with(
        port,
        fast(),
        Some(RegistryAuth::IdentityToken(Secret::new("idt-secret"))),
    );
    assert_eq!(read_blob(&s).unwrap(), BLOB);
    assert!(tokens.lock().unwrap()[0].contains("client_id=imgaudit"));
}

#[test]
fn rejected_credentials_never_leak() {
    let (port, _, _) = token_registry(|_| false);
    let s = store_with(
        port,
        fast(),
        Some(RegistryAuth::Basic {
            username: "alice".into(),
            password: Secret::new("hunter2"),
        }),
    );
    let e = read_blob(&s).unwrap_err();
    assert!(
        e.contains("rejected by the token service") && !e.contains("hunter2"),
        "{e}"
    );
    // Anonymous with a Basic challenge: authentication required.
    let (port, _) = server(|_, _| {
        Resp::Full(
            401,
            vec![("WWW-Authenticate".into(), "Basic realm=\"r\"".into())],
            vec![],
        )
    });
    let e = store_with(port, fast(), None).root().unwrap_err();
    assert!(
        matches!(e, SourceError::Unauthorized { .. })
            && e.to_string()
                .contains("no credentials were found for 127.0.0.1:"),
        "{e}"
    );
}

#[test]
fn registry_digest_header_is_checked_against_the_bytes() {
    let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2},"layers":[]}"#;
    let lie = format!("sha256:{}", "1".repeat(64));
    let (port, _) = registry(move |_, _| {
        Resp::Full(
            200,
            vec![
                (
                    "Content-Type".into(),
                    "application/vnd.oci.image.manifest.v1+json".into(),
                ),
                ("Docker-Content-Digest".into(), lie.clone()),
            ],
            manifest.to_vec(),
        )
    });
    let s = store_with(port, fast(), None);
    let e = crate::source::resolve(
        &s,
        &crate::source::PlatformChoice::Default,
        &crate::limits::Limits::default(),
    )
    .unwrap_err();
    assert!(matches!(e, SourceError::DigestMismatch { .. }), "{e}");
}

#[test]
fn used_inside_an_async_runtime_is_an_error_not_a_panic() {
    let (port, _) = registry(|_, _| ok(BLOB));
    let s = store_with(port, fast(), None);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let e = rt.block_on(async { s.root().unwrap_err() });
    assert!(e.to_string().contains("spawn_blocking"), "{e}");
    drop(rt);
}

#[test]
fn untyped_descriptor_falls_back_to_the_manifests_endpoint() {
    let (port, log) = registry(|req, _| {
        if req.path.contains("/manifests/") {
            ok(BLOB)
        } else {
            Resp::Full(404, vec![], vec![])
        }
    });
    let s = store_with(port, fast(), None);
    let mut d = blob_desc();
    d.media_type = String::new();
    let mut v = Vec::new();
    s.open(&d).unwrap().read_to_end(&mut v).unwrap();
    assert_eq!(v, BLOB);
    assert!(log.lock().unwrap().iter().any(|l| l.contains("/blobs/")));
    // A typed layer descriptor does not.
    let e = read_blob(&s).unwrap_err();
    assert!(
        e.starts_with("blob sha256:") && e.contains("is missing from docker://127.0.0.1:"),
        "{e}"
    );
}

#[test]
fn tags_resolve_with_head_and_a_pool_shares_pings_and_tokens() {
    // HEAD with a digest header; a registry without the header gets a GET whose bytes are
    // hashed.
    let manifest = br#"{"schemaVersion":2}"#;
    let named = format!("sha256:{}", "ab".repeat(32));
    let n2 = named.clone();
    let (port, log) = registry(
        move |req, _| match (req.method.as_str(), req.path.as_str()) {
            ("HEAD", "/v2/ns/app/manifests/v1") => Resp::Full(
                200,
                vec![
                    ("Docker-Content-Digest".into(), n2.clone()),
                    ("Content-Length".into(), "0".into()),
                ],
                vec![],
            ),
            ("HEAD", "/v2/ns/app/manifests/nodigest") => {
                Resp::Full(200, vec![("Content-Length".into(), "0".into())], vec![])
            }
            ("GET", "/v2/ns/app/manifests/nodigest") => ok(manifest),
            _ => Resp::Full(404, vec![("Content-Length".into(), "0".into())], vec![]),
        },
    );
    let host = format!("127.0.0.1:{port}");
    let pool =
        RegistryPool::new(&SourceOptions::new().insecure_host(&host).limits(fast())).unwrap();
    let store = |r: &str| {
        pool.store(ImageReference::parse(&format!("{host}/{r}")).unwrap())
            .unwrap()
    };
    assert_eq!(
        store("ns/app:v1").resolve_digest().unwrap().to_string(),
        named
    );
    assert_eq!(
        store("ns/app:nodigest").resolve_digest().unwrap(),
        Digest::sha256_of(manifest)
    );
    let pinned = format!("sha256:{}", "cd".repeat(32));
    let before = log.lock().unwrap().len();
    assert_eq!(
        store(&format!("ns/app@{pinned}"))
            .resolve_digest()
            .unwrap()
            .to_string(),
        pinned,
        "a digest needs no request"
    );
    assert_eq!(log.lock().unwrap().len(), before);
    let e = store("ns/app:gone").resolve_digest().unwrap_err();
    assert!(matches!(e, SourceError::ManifestUnknown { .. }), "{e}");
    let pings = log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("GET /v2/ "))
        .count();
    assert_eq!(
        pings,
        1,
        "one ping per host for the whole pool: {:?}",
        log.lock().unwrap()
    );

    // The async form, awaited on another runtime.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = ImageReference::parse(&format!("{host}/ns/app:v1")).unwrap();
    assert_eq!(
        rt.block_on(pool.resolve_digest(r)).unwrap().to_string(),
        named
    );
    drop(rt);

    // Tokens are shared per repository: a second store for ns/app fetches none.
    let (port, _, tokens) = token_registry(|_| true);
    let host = format!("127.0.0.1:{port}");
    let pool =
        RegistryPool::new(&SourceOptions::new().insecure_host(&host).limits(fast())).unwrap();
    for _ in 0..3 {
        let s = pool
            .store(ImageReference::parse(&format!("{host}/ns/app:v1")).unwrap())
            .unwrap();
        assert_eq!(read_blob(&s).unwrap(), BLOB);
    }
    assert_eq!(
        tokens.lock().unwrap().len(),
        1,
        "{:?}",
        tokens.lock().unwrap()
    );
    drop(pool);
}

#[test]
fn token_response_past_its_bound_is_refused() {
    let (port, _) = server(|req, _| {
        if req.path.starts_with("/token") {
            let len = (crate::limits::MAX_TOKEN_RESPONSE_BYTES + 1).to_string();
            return Resp::Full(200, vec![("Content-Length".into(), len)], vec![]);
        }
        Resp::Full(
            401,
            vec![(
                "WWW-Authenticate".into(),
                format!(
                    "Bearer realm=\"http://{}/token\",service=\"s\"",
                    req.headers["host"]
                ),
            )],
            vec![],
        )
    });
    let e = store_with(port, fast(), None).root().unwrap_err();
    assert!(
        matches!(e, SourceError::TooLarge { limit, .. } if limit == crate::limits::MAX_TOKEN_RESPONSE_BYTES),
        "{e}"
    );
}

#[test]
fn error_bodies_are_read_within_their_bound() {
    let body = |pad: usize| {
        format!(
            r#"{{"errors":[{{"code":"DENIED","message":"quota","detail":"{}"}}]}}"#,
            "x".repeat(pad)
        )
        .into_bytes()
    };
    let limit = crate::limits::MAX_ERROR_BODY_BYTES as usize;
    let at_limit = limit - body(0).len();
    assert_eq!(body(at_limit).len(), limit);
    let (port, _) = registry(move |_, _| Resp::Full(400, vec![], body(at_limit)));
    let e = read_blob(&store_with(port, fast(), None)).unwrap_err();
    assert!(
        e.contains("HTTP 400 for blob sha256:") && e.ends_with(": DENIED: quota"),
        "{e}"
    );
    // One byte past the bound: the detail is dropped, the status still reported.
    let (port, _) = registry(move |_, _| Resp::Full(400, vec![], body(at_limit + 1)));
    let e = read_blob(&store_with(port, fast(), None)).unwrap_err();
    assert!(
        e.contains("HTTP 400 for blob sha256:") && !e.contains("DENIED"),
        "{e}"
    );
}

#[test]
fn redirects_past_the_bound_are_an_error() {
    let hops = |max: usize| {
        registry(move |req, _| {
            let n: usize = req.path.rsplit('/').next().unwrap().parse().unwrap_or(0);
            if req.path.contains("/blobs/") || n < max {
                Resp::Full(
                    302,
                    vec![("Location".into(), format!("/hop/{}", n + 1))],
                    vec![],
                )
            } else {
                ok(BLOB)
            }
        })
    };
    let (port, _) = hops(crate::limits::REGISTRY_MAX_REDIRECTS);
    assert_eq!(read_blob(&store_with(port, fast(), None)).unwrap(), BLOB);
    let (port, _) = hops(crate::limits::REGISTRY_MAX_REDIRECTS + 1);
    let e = read_blob(&store_with(port, fast(), None)).unwrap_err();
    assert!(e.contains("too many redirects"), "{e}");
}

#[test]
fn tag_resolution_reads_a_bounded_manifest() {
    // No digest header on HEAD: the GET's body is hashed, within the manifest bound.
    let (port, _) = registry(|req, _| {
        let len = if req.method == "HEAD" {
            "0".to_string()
        } else {
            (MAX_MANIFEST_BYTES + 1).to_string()
        };
        Resp::Full(200, vec![("Content-Length".into(), len)], vec![])
    });
    let e = store_with(port, fast(), None).resolve_digest().unwrap_err();
    assert!(
        matches!(e, SourceError::TooLarge { limit, .. } if limit == MAX_MANIFEST_BYTES),
        "{e}"
    );
}

#[test]
fn a_range_answer_at_the_wrong_offset_is_refused() {
    // The resumed request asks for byte 20 on; the server answers 206 from byte 10 with a
    // plausible length. Taken as is, the blob would be spliced wrongly.
    let (port, _) = registry(|_, n| {
        if n == 1 {
            return Resp::Truncated(BLOB.to_vec(), 20);
        }
        Resp::Full(
            206,
            vec![(
                "Content-Range".into(),
                format!("bytes 10-61/{}", BLOB.len()),
            )],
            BLOB[10..62].to_vec(),
        )
    });
    let e = read_blob(&store_with(port, fast(), None)).unwrap_err();
    assert!(e.contains("resumed at the wrong offset"), "{e}");
}

fn pool_for(port: u16) -> (RegistryPool, String) {
    let host = format!("127.0.0.1:{port}");
    let o = SourceOptions::new().insecure_host(&host).limits(fast());
    (RegistryPool::new(&o).unwrap(), host)
}

#[test]
fn listings_follow_next_links_and_honour_429() {
    let (port, log) = registry(|req, n| {
        let path = req.path.as_str();
        let next = |to: &str| vec![("Link".to_string(), format!("<{to}>; rel=\"next\""))];
        if path.starts_with("/v2/_catalog?n=1000") {
            Resp::Full(
                200,
                next("/v2/_catalog?last=b&n=2"),
                br#"{"repositories":["a","b"]}"#.to_vec(),
            )
        } else if path.starts_with("/v2/_catalog?last=b") {
            // `n` counts requests per path without the query: this page's first try is 2.
            if n == 2 {
                return Resp::Full(429, vec![("Retry-After".into(), "1".into())], vec![]);
            }
            Resp::Full(200, vec![], br#"{"repositories":["c/d"]}"#.to_vec())
        } else if path.starts_with("/v2/c/d/tags/list?n=1000") {
            let host = req.headers.get("host").cloned().unwrap_or_default();
            let abs = format!("http://{host}/v2/c/d/tags/list?last=1");
            Resp::Full(200, next(&abs), br#"{"name":"c/d","tags":["1"]}"#.to_vec())
        } else if path.starts_with("/v2/c/d/tags/list?last=1") {
            // An empty page ends the listing whatever its link says.
            Resp::Full(
                200,
                next("/v2/c/d/tags/list?last=1"),
                br#"{"name":"c/d","tags":null}"#.to_vec(),
            )
        } else {
            Resp::Full(404, vec![], vec![])
        }
    });
    let (pool, host) = pool_for(port);
    let t = Instant::now();
    assert_eq!(pool.catalog(&host).unwrap(), ["a", "b", "c/d"]);
    assert!(
        t.elapsed() >= Duration::from_millis(950),
        "Retry-After honoured"
    );
    let repo = ImageReference::parse(&format!("{host}/c/d")).unwrap();
    assert_eq!(pool.tags(&repo).unwrap(), ["1"]);
    let gets = log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("tags/list"))
        .count();
    assert_eq!(gets, 2, "{:?}", log.lock().unwrap());
    let e = pool
        .tags(&ImageReference::parse(&format!("{host}/missing")).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("not offered") || e.contains("404"), "{e}");
}

#[test]
fn listings_are_bounded_and_stay_on_the_registry_host() {
    let (port, _) = registry(|req, _| {
        let path = req.path.as_str();
        if path.starts_with("/v2/_catalog") {
            // The same full page for ever.
            let names: Vec<String> = (0..REGISTRY_LIST_PAGE_SIZE)
                .map(|i| format!("r{i}"))
                .collect();
            let body = serde_json::json!({ "repositories": names }).to_string();
            let link = vec![(
                "Link".to_string(),
                "</v2/_catalog?last=x>; rel=\"next\"".to_string(),
            )];
            Resp::Full(200, link, body.into_bytes())
        } else if path.starts_with("/v2/big/tags/list") {
            Resp::Full(200, vec![], vec![b' '; MAX_LIST_PAGE_BYTES as usize + 1])
        } else {
            let link = vec![(
                "Link".to_string(),
                "<http://elsewhere.example/v2/x>; rel=\"next\"".to_string(),
            )];
            Resp::Full(200, link, br#"{"tags":["1"]}"#.to_vec())
        }
    });
    let (pool, host) = pool_for(port);
    let e = pool.catalog(&host).unwrap_err().to_string();
    assert!(e.contains(&format!("more than {MAX_LIST_ENTRIES}")), "{e}");
    let e = pool
        .tags(&ImageReference::parse(&format!("{host}/big")).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains(&MAX_LIST_PAGE_BYTES.to_string()), "{e}");
    let e = pool
        .tags(&ImageReference::parse(&format!("{host}/other")).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("another host"), "{e}");
}
