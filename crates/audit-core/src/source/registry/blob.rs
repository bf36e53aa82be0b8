//! A blob body as a synchronous `Read` for the layer pipeline: each `read` drives the next body
//! chunk on the store's runtime, so nothing is buffered beyond one chunk. A body that breaks
//! off (reset, stall below the throughput floor, silence past the idle timeout, truncation) is
//! resumed with `Range: bytes=N-`; a server that ignores the range answers 200 and the first
//! N bytes are skipped. Digest and size are checked by the layer pipeline, not here.

use std::io::{self, Read};

use reqwest::header::CONTENT_RANGE;
use reqwest::{Response, StatusCode};
use tokio::time::Instant;

use super::transport::deepest;
use super::{Inner, RegistryStore, ACCEPT_MANIFESTS};
use crate::error::SourceError;
use crate::oci::{self, Descriptor};

/// Opens `desc` from the store: a manifest from the manifests endpoint, anything else from
/// the blobs endpoint (an untyped descriptor falls back to the manifests endpoint on 404).
pub(super) fn open<'a>(
    store: &'a RegistryStore,
    desc: &Descriptor,
) -> Result<BlobReader<'a>, SourceError> {
    let i = &store.inner;
    let is_manifest = matches!(
        desc.media_type.as_str(),
        oci::media::OCI_INDEX
            | oci::media::DOCKER_LIST
            | oci::media::OCI_MANIFEST
            | oci::media::DOCKER_MANIFEST
    );
    let repo = i.reference.repository();
    let manifest_path = format!("/v2/{repo}/manifests/{}", desc.digest);
    let mut path = if is_manifest {
        manifest_path.clone()
    } else {
        format!("/v2/{repo}/blobs/{}", desc.digest)
    };
    let what = format!(
        "{} {}",
        if is_manifest { "manifest" } else { "blob" },
        desc.digest
    );
    let mut accept = is_manifest.then_some(ACCEPT_MANIFESTS);
    let resp = store.block_on(&format!("fetching {what}"), async {
        let mut resp = i.get(&path, accept, None, &what).await?;
        if resp.status() == StatusCode::NOT_FOUND && desc.media_type.is_empty() {
            // An index entry without a media type may name a manifest, which registries
            // serve only from the manifests endpoint.
            let m = i
                .get(&manifest_path, Some(ACCEPT_MANIFESTS), None, &what)
                .await?;
            if m.status().is_success() {
                (resp, path, accept) = (m, manifest_path.clone(), Some(ACCEPT_MANIFESTS));
            }
        }
        i.check_blob_response(resp, desc, 0, &what).await
    })?;
    Ok(BlobReader {
        store,
        path,
        accept,
        what,
        desc: desc.clone(),
        resp: Some(resp),
        chunk: bytes::Bytes::new(),
        pos: 0,
        skip: 0,
        failures: 0,
        window: None,
        failed: None,
    })
}

impl Inner {
    /// Checks a blob response: status, announced length, and for a resumed request where
    /// the body starts. Returns the bytes to skip (a 200 answer to a range request).
    async fn check_blob_response(
        &self,
        resp: Response,
        desc: &Descriptor,
        from: u64,
        what: &str,
    ) -> Result<Response, SourceError> {
        if resp.status() == StatusCode::NOT_FOUND {
            return Err(SourceError::MissingBlob {
                digest: desc.digest.clone(),
                location: self.location.clone(),
            });
        }
        let resp = self.check_status(resp, what).await?;
        let remaining = desc.size.saturating_sub(from);
        if let Some(n) = resp.content_length() {
            let expect = if resp.status() == StatusCode::PARTIAL_CONTENT {
                remaining
            } else {
                desc.size
            };
            if n > expect {
                return Err(SourceError::Registry {
                    registry: self.net.host.clone(),
                    reason: format!(
                        "{what}: the registry announces {n} bytes, the descriptor says {expect}"
                    ),
                });
            }
        }
        Ok(resp)
    }
}

/// A blob body as a synchronous reader; resumes after transport failures.
pub(super) struct BlobReader<'a> {
    store: &'a RegistryStore,
    path: String,
    accept: Option<&'static str>,
    what: String,
    desc: Descriptor,
    resp: Option<Response>,
    chunk: bytes::Bytes,
    /// Bytes handed to the caller.
    pos: u64,
    /// Bytes still to discard from the current response (a 200 answer to a range request).
    skip: u64,
    failures: u32,
    /// Start of the throughput window and bytes seen in it.
    window: Option<(Instant, u64)>,
    /// The error that ended the transfer: later reads repeat it instead of retrying again.
    failed: Option<String>,
}

impl BlobReader<'_> {
    async fn next_chunk(&mut self) -> Result<Option<bytes::Bytes>, SourceError> {
        let i = &self.store.inner;
        let l = &i.net.limits;
        loop {
            if self.resp.is_none() {
                let resp = i
                    .get(&self.path, self.accept, Some(self.pos), &self.what)
                    .await?;
                let resp = i
                    .check_blob_response(resp, &self.desc, self.pos, &self.what)
                    .await?;
                self.skip = if resp.status() == StatusCode::PARTIAL_CONTENT {
                    let start = resp
                        .headers()
                        .get(CONTENT_RANGE)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.strip_prefix("bytes "))
                        .and_then(|v| v.split('-').next())
                        .and_then(|v| v.parse::<u64>().ok());
                    if start != Some(self.pos) {
                        return Err(SourceError::Registry {
                            registry: i.net.host.clone(),
                            reason: format!("{}: resumed at the wrong offset", self.what),
                        });
                    }
                    0
                } else {
                    self.pos
                };
                self.resp = Some(resp);
                self.window = None;
            }
            let Some(resp) = self.resp.as_mut() else {
                unreachable!()
            };
            let now = Instant::now();
            let (w_start, w_bytes) = *self.window.get_or_insert((now, 0));
            let failure = match tokio::time::timeout(l.idle_timeout, resp.chunk()).await {
                Ok(Ok(Some(mut c))) => {
                    let got = c.len() as u64;
                    if self.skip > 0 {
                        let k = self.skip.min(got);
                        c = c.slice(k as usize..);
                        self.skip -= k;
                    }
                    let now = Instant::now();
                    let (mut ws, mut wb) = (w_start, w_bytes + got);
                    let elapsed = now.duration_since(ws);
                    let mut stalled = None;
                    if elapsed >= l.rate_window {
                        let floor = (l.min_bytes_per_sec as f64 * elapsed.as_secs_f64()) as u64;
                        if wb < floor {
                            stalled = Some(format!(
                                "transfer slower than {} bytes/s",
                                l.min_bytes_per_sec
                            ));
                        }
                        (ws, wb) = (now, 0);
                    }
                    self.window = Some((ws, wb));
                    match stalled {
                        Some(s) => s,
                        None if c.is_empty() => continue,
                        None => return Ok(Some(c)),
                    }
                }
                Ok(Ok(None)) => return Ok(None),
                Ok(Err(e)) => deepest(&e),
                Err(_) => format!("no data for {} s", l.idle_timeout.as_secs()),
            };
            self.failures += 1;
            self.resp = None;
            if self.failures >= l.max_attempts {
                return Err(SourceError::Unreachable {
                    registry: i.net.host.clone(),
                    reason: format!(
                        "{}: {failure} at byte {} (after {} attempts)",
                        self.what, self.pos, self.failures
                    ),
                });
            }
            tracing::debug!(host = %i.net.host, what = %self.what, pos = self.pos, %failure, "blob transfer broke off; resuming");
            tokio::time::sleep(i.net.backoff(self.failures)).await;
        }
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if let Some(e) = &self.failed {
            return Err(io::Error::other(e.clone()));
        }
        if self.chunk.is_empty() {
            let store = self.store;
            let what = format!("fetching {}", self.what);
            match store.block_on(&what, self.next_chunk()) {
                Ok(Some(c)) => self.chunk = c,
                Ok(None) => return Ok(0),
                Err(e) => {
                    let msg = e.to_string();
                    self.failed = Some(msg.clone());
                    return Err(io::Error::other(msg));
                }
            }
        }
        let n = out.len().min(self.chunk.len());
        out[..n].copy_from_slice(&self.chunk[..n]);
        let _ = self.chunk.split_to(n);
        self.pos += n as u64;
        Ok(n)
    }
}
