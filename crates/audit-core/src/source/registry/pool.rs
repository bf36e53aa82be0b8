//! The network state many pulls share: one small tokio runtime, per registry host the HTTP
//! clients (with their connection pools) and the scheme chosen by the first `/v2/` ping, and
//! per repository the credentials and token. A long-running process (the admission webhook)
//! keeps one [`RegistryPool`]; [`super::RegistryStore::new`] makes a private one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio::time::Instant;

use super::auth::{AuthState, RepoAuth};
use super::transport::{HostState, Transport};
use super::{Inner, RegistryStore};
use crate::digest::Digest;
use crate::error::SourceError;
use crate::source::options::SourceOptions;
use crate::source::reference::ImageReference;

/// How long a [`RegistryPool`] keeps a repository's credentials and token: 10 minutes. After
/// that the next store for the repository looks its credentials up again, so a rotated
/// mounted docker config is picked up without a restart.
pub const POOL_AUTH_MAX_AGE: Duration = Duration::from_secs(600);

/// Most registry hosts, and most repositories, a [`RegistryPool`] keeps state for: 1,024
/// each (a few KiB per entry). Past it the oldest half is dropped and set up again on use.
pub const POOL_MAX_ENTRIES: usize = 1024;

/// Shared network state for many registry pulls (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct RegistryPool {
    shared: Arc<Shared>,
}

pub(super) struct Shared {
    pub(super) rt: Rt,
    opts: SourceOptions,
    hosts: Mutex<HashMap<String, Arc<HostState>>>,
    repos: Mutex<HashMap<(String, String), RepoEntry>>,
}

/// When a repository's auth state was made, and the state (shared by its stores).
type RepoEntry = (Instant, Arc<Mutex<AuthState>>);

/// The pool's runtime; shut down without blocking when the last user goes (dropping a
/// runtime inside another one would panic).
pub(crate) struct Rt(Option<Runtime>);

impl Rt {
    /// A small runtime with one network thread.
    pub(crate) fn new() -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("imgaudit-net")
            .enable_io()
            .enable_time()
            .build()?;
        Ok(Self(Some(rt)))
    }

    pub(crate) fn get(&self) -> &Runtime {
        let Some(rt) = &self.0 else {
            unreachable!("runtime present until drop")
        };
        rt
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl RegistryPool {
    /// A pool with its own small runtime (one network thread). Nothing is sent yet.
    pub fn new(opts: &SourceOptions) -> Result<Self, SourceError> {
        let rt = Rt::new().map_err(|e| SourceError::Registry {
            registry: "registry".into(),
            reason: format!("starting the network runtime: {e}"),
        })?;
        Ok(Self {
            shared: Arc::new(Shared {
                rt,
                opts: opts.clone(),
                hosts: Mutex::default(),
                repos: Mutex::default(),
            }),
        })
    }

    /// A store for `reference` sharing this pool's runtime, clients, pings and tokens. Its
    /// overall deadline ([`crate::source::RegistryLimits::total_timeout`]) starts now.
    pub fn store(&self, reference: ImageReference) -> Result<RegistryStore, SourceError> {
        let repository = reference.repository().to_string();
        self.store_as(reference, repository)
    }

    /// A store for `reference` whose credentials and token are those of `auth_repository`
    /// (empty: the registry's catalog, scope `registry:catalog:*`).
    pub(super) fn store_as(
        &self,
        reference: ImageReference,
        auth_repository: String,
    ) -> Result<RegistryStore, SourceError> {
        let sh = &self.shared;
        let opts = &sh.opts;
        let host = reference.api_host().to_string();
        let hs = {
            let mut hosts = sh.hosts.lock().unwrap_or_else(PoisonError::into_inner);
            match hosts.get(&host) {
                Some(h) => Arc::clone(h),
                None => {
                    let insecure =
                        opts.is_insecure(reference.registry()) || opts.is_insecure(&host);
                    let _guard = sh.rt.get().enter();
                    let h = Arc::new(HostState::new(opts, &host, insecure)?);
                    prune(&mut hosts, |v| v.created);
                    hosts.insert(host.clone(), Arc::clone(&h));
                    h
                }
            }
        };
        let state = {
            let mut repos = sh.repos.lock().unwrap_or_else(PoisonError::into_inner);
            let key = (host.clone(), auth_repository.clone());
            match repos.get(&key) {
                Some((t, a)) if t.elapsed() < POOL_AUTH_MAX_AGE => Arc::clone(a),
                _ => {
                    let a = Arc::new(Mutex::new(AuthState::default()));
                    prune(&mut repos, |v| v.0);
                    repos.insert(key, (Instant::now(), Arc::clone(&a)));
                    a
                }
            }
        };
        let inner = Inner {
            location: format!("docker://{reference}"),
            deadline: Instant::now() + opts.limits.total_timeout,
            net: Transport {
                host,
                hs,
                opts: opts.clone(),
                limits: opts.limits.clone(),
            },
            auth: RepoAuth {
                state,
                registry: reference.registry().to_string(),
                repository: auth_repository,
            },
            reference,
        };
        Ok(RegistryStore {
            shared: Arc::clone(&self.shared),
            inner,
        })
    }

    /// [`RegistryStore::resolve_digest`] for async callers: the request runs on the pool's
    /// runtime and the returned future can be awaited from any runtime (no blocking thread).
    pub fn resolve_digest(
        &self,
        reference: ImageReference,
    ) -> impl std::future::Future<Output = Result<Digest, SourceError>> + Send + 'static {
        let store = self.store(reference);
        let handle = self.shared.rt.get().handle().clone();
        async move {
            let RegistryStore { inner, .. } = store?;
            if let Some(d) = inner.reference.digest() {
                return Ok(d.clone());
            }
            let host = inner.net.host.clone();
            let task = handle.spawn(async move {
                let what = format!("resolving {}", inner.reference);
                match tokio::time::timeout_at(inner.deadline, inner.resolve()).await {
                    Ok(r) => r,
                    Err(_) => Err(inner.timed_out(what)),
                }
            });
            task.await.map_err(|e| SourceError::Registry {
                registry: host,
                reason: format!("resolution task failed: {e}"),
            })?
        }
    }
}

/// Drops the older half of a map that reached [`POOL_MAX_ENTRIES`].
fn prune<K: Clone + Eq + std::hash::Hash, V>(
    m: &mut HashMap<K, V>,
    created: impl Fn(&V) -> Instant,
) {
    if m.len() < POOL_MAX_ENTRIES {
        return;
    }
    let mut ages: Vec<(Instant, K)> = m.iter().map(|(k, v)| (created(v), k.clone())).collect();
    ages.sort_by_key(|(t, _)| *t);
    for (_, k) in ages.into_iter().take(POOL_MAX_ENTRIES / 2) {
        m.remove(&k);
    }
}
