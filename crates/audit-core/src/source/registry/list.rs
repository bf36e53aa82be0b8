//! Registry listings for sweeps: the repositories of a registry (`GET /v2/_catalog`) and the
//! tags of a repository (`GET /v2/<name>/tags/list`), page by page as the distribution spec
//! describes (<https://github.com/opencontainers/distribution-spec/blob/main/spec.md>,
//! "Listing Tags"; the catalog is the distribution registry's extension,
//! <https://distribution.github.io/distribution/spec/api/#catalog>): `n` asks for a page size,
//! the `Link: <…>; rel="next"` header names the next page. Requests go through the same
//! authenticated, retrying transport as pulls (429 + `Retry-After` honoured), pages are read
//! within [`MAX_LIST_PAGE_BYTES`], and a listing longer than [`MAX_LIST_ENTRIES`] is an error.

use reqwest::header::LINK;
use reqwest::{StatusCode, Url};

use super::{parse, RegistryPool, RegistryStore};
use crate::error::SourceError;
use crate::limits::{MAX_LIST_ENTRIES, MAX_LIST_PAGE_BYTES, REGISTRY_LIST_PAGE_SIZE};
use crate::source::reference::ImageReference;

/// One page: `{"repositories": [...]}` or `{"name": ..., "tags": [...]}` (`tags` may be null).
#[derive(serde::Deserialize)]
struct Page {
    #[serde(default)]
    repositories: Option<Vec<String>>,
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl RegistryPool {
    /// The repositories of `registry` (`host[:port]`), from `/v2/_catalog`, in the registry's
    /// order. Registries that do not offer a catalog (Docker Hub, most hosted ones) answer
    /// with an error.
    pub fn catalog(&self, registry: &str) -> Result<Vec<String>, SourceError> {
        // Any valid repository name serves to reach the host; the credentials and token are
        // the catalog's own (`store_as` with no repository).
        let reference = ImageReference::parse(&format!("{registry}/catalog"))?;
        let store = self.store_as(reference, String::new())?;
        list(
            &store,
            "/v2/_catalog",
            &format!("the repository catalog of {registry}"),
        )
    }

    /// The tags of `repository` (its tag and digest, if any, are ignored).
    pub fn tags(&self, repository: &ImageReference) -> Result<Vec<String>, SourceError> {
        let name = repository.repository();
        let store = self.store(repository.clone())?;
        list(
            &store,
            &format!("/v2/{name}/tags/list"),
            &format!("the tags of {}", repository.name()),
        )
    }
}

/// Every name of a paginated listing starting at `path`.
fn list(store: &RegistryStore, path: &str, what: &str) -> Result<Vec<String>, SourceError> {
    let i = &store.inner;
    store.block_on(&format!("listing {what}"), async {
        let mut next = format!("{path}?n={REGISTRY_LIST_PAGE_SIZE}");
        let mut out = Vec::new();
        loop {
            let resp = i.get(&next, None, None, what).await?;
            if resp.status() == StatusCode::NOT_FOUND {
                return Err(SourceError::Registry {
                    registry: i.net.host.clone(),
                    reason: format!("{what}: not offered by this registry (HTTP 404)"),
                });
            }
            let resp = i.check_status(resp, what).await?;
            let link = resp
                .headers()
                .get(LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(parse::next_link)
                .map(str::to_string);
            let body = i.net.read_bounded(resp, MAX_LIST_PAGE_BYTES, what).await?;
            let page: Page = serde_json::from_slice(&body).map_err(|e| SourceError::Registry {
                registry: i.net.host.clone(),
                reason: format!(
                    "{what}: not a listing: {}",
                    parse::one_line(&e.to_string(), 200)
                ),
            })?;
            let names = page.repositories.or(page.tags).unwrap_or_default();
            let added = names.len();
            out.extend(names);
            if out.len() > MAX_LIST_ENTRIES {
                return Err(SourceError::Registry {
                    registry: i.net.host.clone(),
                    reason: format!("{what}: more than {MAX_LIST_ENTRIES} names"),
                });
            }
            // An empty page ends the listing whatever its link says (a server linking to
            // empty pages for ever would otherwise hold the sweep).
            match link {
                Some(l) if added > 0 => next = same_host_path(&l, &i.net.host, what)?,
                _ => return Ok(out),
            }
        }
    })
}

/// The path and query of a `Link` target: relative, or absolute on the registry's own host
/// (credentials are never sent elsewhere).
fn same_host_path(target: &str, host: &str, what: &str) -> Result<String, SourceError> {
    if target.starts_with('/') && !target.starts_with("//") {
        return Ok(target.to_string());
    }
    let bad = |reason: String| SourceError::Registry {
        registry: host.to_string(),
        reason: format!("{what}: {reason}"),
    };
    let url = Url::parse(target).map_err(|e| bad(format!("bad next-page link: {e}")))?;
    let at = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => String::new(),
    };
    if at != host {
        return Err(bad(format!(
            "the next page is on another host ({})",
            parse::one_line(&at, 100)
        )));
    }
    Ok(match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    })
}
