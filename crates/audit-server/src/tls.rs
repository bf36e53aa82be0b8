//! The serving certificate: loaded from PEM files, swapped in place when the files change
//! (cert-manager rotation, a re-mounted Secret), so new handshakes get the new certificate
//! without a restart. A broken pair on disk keeps the old one and logs an error.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::ServeError;

/// Largest certificate or key file read: 1 MiB.
const MAX_PEM_BYTES: u64 = 1 << 20;

#[derive(Debug)]
pub(crate) struct Reloading {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<(Vec<u8>, Arc<CertifiedKey>)>,
}

fn read(p: &Path) -> Result<Vec<u8>, ServeError> {
    let bad = |e: std::io::Error| ServeError::Certificate(format!("{}: {e}", p.display()));
    let len = std::fs::metadata(p).map_err(bad)?.len();
    if len > MAX_PEM_BYTES {
        return Err(ServeError::Certificate(format!(
            "{}: larger than {MAX_PEM_BYTES} bytes",
            p.display()
        )));
    }
    std::fs::read(p).map_err(bad)
}

/// Both files' bytes (to notice changes) and the parsed pair.
fn load(cert: &Path, key: &Path) -> Result<(Vec<u8>, Arc<CertifiedKey>), ServeError> {
    let (cb, kb) = (read(cert)?, read(key)?);
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cb)
        .collect::<Result<_, _>>()
        .map_err(|e| ServeError::Certificate(format!("{}: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(ServeError::Certificate(format!(
            "{}: no PEM certificate",
            cert.display()
        )));
    }
    let k = PrivateKeyDer::from_pem_slice(&kb).map_err(|e| {
        ServeError::Certificate(format!("{}: no usable PEM private key: {e}", key.display()))
    })?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&k)
        .map_err(|e| ServeError::Certificate(format!("{}: {e}", key.display())))?;
    let ck = CertifiedKey::new(chain, signer);
    ck.keys_match().map_err(|e| {
        ServeError::Certificate(format!(
            "{} does not belong to {}: {e}",
            key.display(),
            cert.display()
        ))
    })?;
    let mut stamp = cb;
    stamp.extend_from_slice(&kb);
    Ok((stamp, Arc::new(ck)))
}

impl Reloading {
    pub(crate) fn new(cert: &Path, key: &Path) -> Result<Arc<Self>, ServeError> {
        let current = load(cert, key)
            .map_err(|e| ServeError::Certificate(format!("--tls-cert/--tls-key: {e}")))?;
        Ok(Arc::new(Self {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new(current),
        }))
    }

    /// Reloads when the files' bytes changed. Returns whether a new pair is in use.
    pub(crate) fn check(&self) -> bool {
        let same = |stamp: &[u8]| self.current.read().is_ok_and(|c| c.0 == stamp);
        let (cb, kb) = match (read(&self.cert), read(&self.key)) {
            (Ok(c), Ok(k)) => (c, k),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "reading the TLS certificate files; keeping the current pair");
                return false;
            }
        };
        let mut stamp = cb;
        stamp.extend_from_slice(&kb);
        if same(&stamp) {
            return false;
        }
        match load(&self.cert, &self.key) {
            Ok(new) => {
                if let Ok(mut c) = self.current.write() {
                    *c = new;
                }
                tracing::info!(cert = %self.cert.display(), "TLS certificate reloaded");
                true
            }
            Err(e) => {
                // Files are often written one after the other: the next check retries.
                tracing::error!(error = %e, "new TLS certificate files are not usable yet; keeping the current pair");
                false
            }
        }
    }

    /// A server config (TLS 1.2 and 1.3, HTTP/1.1 by ALPN) answering with the current pair.
    pub(crate) fn server_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>, ServeError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ServeError::Certificate(format!("TLS protocol versions: {e}")))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(self) as Arc<dyn ResolvesServerCert>);
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }

    /// Checks the files every `every` until the process ends.
    pub(crate) fn watch(self: Arc<Self>, every: Duration) {
        tokio::spawn(async move {
            let mut t = tokio::time::interval(every.max(Duration::from_millis(100)));
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t.tick().await;
            loop {
                t.tick().await;
                let me = Arc::clone(&self);
                // File reads are blocking; they are tiny.
                let _ = tokio::task::spawn_blocking(move || me.check()).await;
            }
        });
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| Arc::clone(&c.1))
    }
}
