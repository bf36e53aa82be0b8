//! The Docker Engine API (Docker, and Podman's compatible service): resolve an image with
//! `GET /images/{name}/json`, then stream `GET /images/{id}/get` (the engine's `docker
//! save`) into [`super::stream`]. API reference:
//! <https://docs.docker.com/reference/api/engine/version/v1.41/#tag/Image>.
//!
//! HTTP is reqwest's (already the registry client's), over the engine's unix socket or TCP
//! with Docker's TLS client certificates; paths are unversioned, which an engine serves at
//! its own API version, so no version negotiation is needed. Why not bollard:
//! `docs/architecture.md`, "Engine APIs". Async stays here: the stream is a synchronous
//! `Read` whose `read` drives the next body chunk on this source's small runtime, with an
//! idle bound.

use std::io::{self, Read};
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use reqwest::{Client, Response, StatusCode};
use serde::Deserialize;

use super::{check_name, ArchiveStream, EngineHost, EngineOptions};
use crate::digest::Digest;
use crate::error::SourceError;
use crate::limits::MAX_ENGINE_RESPONSE_BYTES;
use crate::source::registry::{deepest, Rt};
use crate::source::ResolvedImage;

/// An image in an engine that speaks the Docker Engine API.
pub struct DockerEngine {
    kind: &'static str,
    engine: &'static str,
    host: EngineHost,
    name: String,
    client: Client,
    base: &'static str,
    rt: Rt,
    idle: Duration,
    id: OnceLock<Digest>,
}

/// The part of `GET /images/{name}/json` used here.
#[derive(Deserialize)]
struct Inspect {
    #[serde(rename = "Id")]
    id: String,
}

impl DockerEngine {
    /// Prepares to read `name` (a reference, an image ID or ID prefix) from the engine at
    /// `host`. `kind` is the source's name in reports (`docker-daemon`, `podman`); `engine`
    /// names the engine in messages. Nothing is sent yet.
    pub fn new(
        kind: &'static str,
        engine: &'static str,
        host: &EngineHost,
        name: &str,
        opts: &EngineOptions,
    ) -> Result<Self, SourceError> {
        check_name(name)?;
        let label = format!("{engine} at {host}");
        let rt = Rt::new().map_err(|e| SourceError::Engine {
            engine: label.clone(),
            reason: format!("starting the network runtime: {e}"),
        })?;
        // reqwest's `rustls-no-provider` takes the process default (see the registry's
        // transport).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tls_err = |reason: String| SourceError::Tls {
            registry: label.clone(),
            reason,
        };
        let mut b = Client::builder()
            .connect_timeout(opts.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .http1_only();
        let base = match host {
            EngineHost::Unix(p) => {
                b = b.unix_socket(p.as_path());
                "http://localhost"
            }
            EngineHost::Tcp { tls: None, .. } => "http://",
            EngineHost::Tcp { tls: Some(t), .. } => {
                if let Some(ca) = &t.ca_pem {
                    let certs = reqwest::Certificate::from_pem_bundle(ca)
                        .map_err(|e| tls_err(format!("the CA certificate: {}", deepest(&e))))?;
                    b = b.tls_certs_only(certs);
                }
                if let Some(id) = &t.identity_pem {
                    let id = reqwest::Identity::from_pem(id).map_err(|e| {
                        tls_err(format!("the client certificate or key: {}", deepest(&e)))
                    })?;
                    b = b.identity(id);
                }
                b = b.tls_danger_accept_invalid_certs(!t.verify);
                "https://"
            }
        };
        let client = rt
            .get()
            .block_on(async { b.build() })
            .map_err(|e| SourceError::Engine {
                engine: label.clone(),
                reason: format!("building the HTTP client: {}", deepest(&e)),
            })?;
        Ok(Self {
            kind,
            engine,
            host: host.clone(),
            name: name.to_string(),
            client,
            base,
            rt,
            idle: opts.idle_timeout,
            id: OnceLock::new(),
        })
    }

    fn label(&self) -> String {
        format!("{} at {}", self.engine, self.host)
    }

    fn url(&self, path: &str) -> String {
        match &self.host {
            EngineHost::Tcp { addr, .. } => format!("{}{addr}{path}", self.base),
            EngineHost::Unix(_) => format!("{}{path}", self.base),
        }
    }

    fn engine_err(&self, reason: String) -> SourceError {
        SourceError::Engine {
            engine: self.label(),
            reason,
        }
    }

    /// Sends `GET path`, waiting at most the idle bound for the answer's head.
    async fn get(&self, path: &str) -> Result<Response, SourceError> {
        let send = self.client.get(self.url(path)).send();
        match tokio::time::timeout(self.idle, send).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) if e.is_connect() => Err(SourceError::EngineUnreachable {
                engine: self.label(),
                reason: deepest(&e),
            }),
            Ok(Err(e)) => Err(self.engine_err(format!("GET {path}: {}", deepest(&e)))),
            Err(_) => Err(self.engine_err(format!(
                "GET {path}: no answer for {} s",
                self.idle.as_secs()
            ))),
        }
    }

    /// Reads a JSON answer whole, at most [`MAX_ENGINE_RESPONSE_BYTES`].
    async fn body(&self, mut resp: Response, what: &str) -> Result<Vec<u8>, SourceError> {
        let too_large = || SourceError::TooLarge {
            what: format!("{}: {what}", self.label()),
            limit: MAX_ENGINE_RESPONSE_BYTES,
        };
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_ENGINE_RESPONSE_BYTES)
        {
            return Err(too_large());
        }
        let mut buf = Vec::new();
        loop {
            match tokio::time::timeout(self.idle, resp.chunk()).await {
                Ok(Ok(Some(c))) => {
                    if (buf.len() + c.len()) as u64 > MAX_ENGINE_RESPONSE_BYTES {
                        return Err(too_large());
                    }
                    buf.extend_from_slice(&c);
                }
                Ok(Ok(None)) => return Ok(buf),
                Ok(Err(e)) => {
                    return Err(self.engine_err(format!("reading {what}: {}", deepest(&e))))
                }
                Err(_) => {
                    return Err(self.engine_err(format!(
                        "reading {what}: nothing for {} s",
                        self.idle.as_secs()
                    )))
                }
            }
        }
    }

    /// The engine's complaint from an error answer (`{"message": …}`), one line.
    async fn complaint(&self, resp: Response, what: &str) -> SourceError {
        let status = resp.status();
        let detail = self
            .body(resp, what)
            .await
            .ok()
            .and_then(|b| {
                #[derive(Deserialize)]
                struct Msg {
                    message: String,
                }
                serde_json::from_slice::<Msg>(&b).ok().map(|m| m.message)
            })
            .map(|m| format!(": {}", crate::error::one_line(&m)))
            .unwrap_or_default();
        self.engine_err(format!("{what}: HTTP {}{detail}", status.as_u16()))
    }

    /// The image's ID, asking the engine once: whether it is reachable and has the image.
    pub fn inspect(&self) -> Result<&Digest, SourceError> {
        if let Some(id) = self.id.get() {
            return Ok(id);
        }
        let path = format!("/images/{}/json", self.name);
        let id = self.block_on(async {
            let resp = self.get(&path).await?;
            match resp.status() {
                StatusCode::OK => {}
                StatusCode::NOT_FOUND => {
                    return Err(SourceError::EngineImageNotFound {
                        engine: self.label(),
                        image: self.name.clone(),
                    })
                }
                _ => return Err(self.complaint(resp, &format!("GET {path}")).await),
            }
            let body = self.body(resp, &format!("GET {path}")).await?;
            let rec: Inspect = serde_json::from_slice(&body)
                .map_err(|e| self.engine_err(format!("GET {path}: not an image record: {e}")))?;
            // Podman's own API writes the ID without its algorithm.
            let id = if rec.id.contains(':') {
                rec.id.clone()
            } else {
                format!("sha256:{}", rec.id)
            };
            id.parse::<Digest>().map_err(|e| {
                self.engine_err(format!(
                    "GET {path}: image ID {:?}: {e}",
                    crate::error::one_line(&rec.id)
                ))
            })
        })?;
        Ok(self.id.get_or_init(|| id))
    }

    fn block_on<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, SourceError>>,
    ) -> Result<T, SourceError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(self.engine_err(
                "the engine source was used from inside an async runtime; call it from spawn_blocking".into(),
            ));
        }
        self.rt.get().block_on(fut)
    }
}

/// The `/get` body as a synchronous `Read`.
struct Body<'a> {
    engine: &'a DockerEngine,
    resp: Response,
    chunk: Bytes,
}

impl Read for Body<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        while self.chunk.is_empty() {
            let idle = self.engine.idle;
            let next = self
                .engine
                .rt
                .get()
                .block_on(async { tokio::time::timeout(idle, self.resp.chunk()).await });
            match next {
                Ok(Ok(Some(c))) => self.chunk = c,
                Ok(Ok(None)) => return Ok(0),
                Ok(Err(e)) => {
                    return Err(io::Error::other(format!(
                        "the image stream broke off: {}",
                        deepest(&e)
                    )))
                }
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the engine sent nothing for {} s", idle.as_secs()),
                    ))
                }
            }
        }
        let n = out.len().min(self.chunk.len());
        out[..n].copy_from_slice(&self.chunk[..n]);
        let _ = self.chunk.split_to(n);
        Ok(n)
    }
}

impl ArchiveStream for DockerEngine {
    fn location(&self) -> String {
        format!("{} ({})", self.label(), self.name)
    }

    fn kind(&self) -> &'static str {
        self.kind
    }

    fn open(&self) -> Result<Box<dyn Read + Send + '_>, SourceError> {
        // Exported by ID, so the archive is the image just inspected even if the tag moves.
        let id = self.inspect()?.clone();
        let path = format!("/images/{id}/get");
        let resp = self.block_on(async {
            let resp = self.get(&path).await?;
            if resp.status() != StatusCode::OK {
                return Err(self.complaint(resp, &format!("GET {path}")).await);
            }
            Ok(resp)
        })?;
        Ok(Box::new(Body {
            engine: self,
            resp,
            chunk: Bytes::new(),
        }))
    }

    fn stream_error(&self, e: io::Error) -> SourceError {
        self.engine_err(format!("reading the image archive: {e}"))
    }

    fn check(&self, images: &[ResolvedImage]) -> Result<(), SourceError> {
        let id = self.inspect()?;
        // The image ID is the config digest (Docker's graph drivers, Podman) or the manifest
        // or index digest (Docker's containerd image store).
        let same = images.iter().any(|i| {
            i.config_digest == *id
                || i.manifest_digest.as_ref() == Some(id)
                || i.index_digest.as_ref() == Some(id)
        });
        if same {
            Ok(())
        } else {
            Err(self.engine_err(format!(
                "the archive exported for image {id} holds another image ({})",
                images
                    .iter()
                    .map(|i| i.config_digest.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// An engine that accepts and then says nothing, and one whose `/get` stalls after its
    /// head: both end at the idle bound ([`crate::limits::ENGINE_IDLE_TIMEOUT_SECS`], one
    /// second here).
    #[test]
    fn a_silent_engine_is_an_error_after_the_idle_bound() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("d.sock");
        let l = UnixListener::bind(&sock).unwrap();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for c in l.incoming().flatten() {
                let mut c = c;
                let mut buf = [0u8; 4096];
                let n = c.read(&mut buf).unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).into_owned();
                if req.starts_with("GET /images/stall/json") {
                    let body = format!("{{\"Id\":\"sha256:{}\"}}", "ab".repeat(32));
                    let _ = std::io::Write::write_all(
                        &mut c,
                        format!("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}", body.len())
                            .as_bytes(),
                    );
                } else if req.contains("/get ") {
                    let _ = std::io::Write::write_all(
                        &mut c,
                        b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nabc",
                    );
                }
                held.push(c);
            }
        });
        let opts = EngineOptions {
            idle_timeout: Duration::from_secs(1),
            ..EngineOptions::default()
        };
        let host = EngineHost::Unix(sock);
        let d = DockerEngine::new("docker-daemon", "docker", &host, "silent", &opts).unwrap();
        let t = std::time::Instant::now();
        let e = d.inspect().unwrap_err().to_string();
        assert!(e.contains("no answer for 1 s"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(5));
        let d = DockerEngine::new("docker-daemon", "docker", &host, "stall", &opts).unwrap();
        let mut r = d.open().unwrap();
        let mut out = Vec::new();
        let e = r.read_to_end(&mut out).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert_eq!(out, b"abc");
    }

    /// A TCP engine whose accept queue is full: Linux drops further SYNs
    /// (`tcp_conn_request`, with `net.ipv4.tcp_abort_on_overflow` 0, the default), so a
    /// connection hangs until the connect bound ([`crate::limits::ENGINE_CONNECT_TIMEOUT_SECS`],
    /// one second here) ends it: unreachable, not a stall of the idle bound.
    #[test]
    fn a_connection_that_never_completes_ends_at_the_connect_bound() {
        // A listener with a backlog of one (tokio's TcpSocket sets it; std's cannot), never
        // accepting: connect until one connection does not complete within 200 ms.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        let l = rt
            .block_on(async {
                let s = tokio::net::TcpSocket::new_v4()?;
                s.bind(([127, 0, 0, 1], 0).into())?;
                s.listen(1)
            })
            .unwrap();
        let addr = l.local_addr().unwrap();
        let mut held = Vec::new();
        let full = (0..64).any(|_| {
            match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                Ok(c) => {
                    held.push(c);
                    false
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut => true,
                Err(e) => panic!("connecting to the test listener: {e}"),
            }
        });
        assert!(
            full,
            "the accept queue never filled ({} connections)",
            held.len()
        );
        let opts = EngineOptions {
            connect_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(30),
            ..EngineOptions::default()
        };
        let host = EngineHost::Tcp {
            addr: addr.to_string(),
            tls: None,
        };
        let d = DockerEngine::new("docker-daemon", "docker", &host, "app", &opts).unwrap();
        let t = std::time::Instant::now();
        let e = d.inspect().unwrap_err();
        assert!(matches!(e, SourceError::EngineUnreachable { .. }), "{e:?}");
        assert!(
            t.elapsed() >= Duration::from_millis(900),
            "{:?}",
            t.elapsed()
        );
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        drop((l, held, rt));
    }
}
