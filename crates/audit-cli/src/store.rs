//! The layer store from `--cache-dir`, `--no-cache`, `--cache URL`: the paths, URL and key file
//! are resolved here (the library reads no environment).

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use audit_core::store::{DiskStore, LayerStore, RedisOptions, RedisStore};

use crate::cli::StoreArgs;

/// The store the flags ask for: `None` with `--no-cache`, Redis with `--cache`, else the disk
/// store. A disk store that cannot be opened is a warning (audits go on without it).
pub(crate) fn open(
    args: &StoreArgs,
    env: impl Fn(&str) -> Option<OsString>,
) -> anyhow::Result<Option<Arc<dyn LayerStore>>> {
    if args.no_cache {
        return Ok(None);
    }
    if let Some(url) = &args.cache {
        return Ok(Some(open_redis(args, url)?));
    }
    if args.cache_key_file.is_some() {
        bail!("--cache-key-file: only used with --cache redis://…");
    }
    let Some(dir) = dir(args, env) else {
        tracing::warn!(
            "no cache directory ($XDG_CACHE_HOME and $HOME unset): layer analyses are not kept"
        );
        return Ok(None);
    };
    match DiskStore::open(&dir, args.cache_max_bytes) {
        Ok(s) => Ok(Some(Arc::new(s))),
        Err(e) => {
            tracing::warn!(error = %e, "layer store unavailable: layer analyses are not kept");
            Ok(None)
        }
    }
}

/// The disk store as `imgaudit cache` works on it.
pub(crate) fn open_disk(
    args: &StoreArgs,
    env: impl Fn(&str) -> Option<OsString>,
) -> anyhow::Result<DiskStore> {
    if args.cache.is_some() || args.no_cache {
        bail!("`imgaudit cache` works on the disk store (for Redis, entries expire by their TTL)");
    }
    let dir = dir(args, env).context("no cache directory: give --cache-dir")?;
    Ok(DiskStore::open(&dir, args.cache_max_bytes)?)
}

/// `--cache-dir`, else `$XDG_CACHE_HOME/imgaudit` (when absolute, as the XDG Base Directory
/// specification asks), else `$HOME/.cache/imgaudit`.
fn dir(args: &StoreArgs, env: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    if let Some(d) = &args.cache_dir {
        return Some(d.clone());
    }
    let xdg = env("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let base = xdg.or_else(|| {
        env("HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .map(|h| h.join(".cache"))
    })?;
    Some(base.join("imgaudit"))
}

fn open_redis(args: &StoreArgs, url: &str) -> anyhow::Result<Arc<dyn LayerStore>> {
    Ok(redis(args, url)?)
}

/// The Redis store of `--cache URL`, `--cache-key-file`, `--cache-entry-ttl`.
pub(crate) fn redis(args: &StoreArgs, url: &str) -> anyhow::Result<Arc<RedisStore>> {
    let key = read_key(args)?;
    let opts =
        RedisOptions::new(url, key)?.ttl(std::time::Duration::from_secs(args.cache_entry_ttl));
    tracing::info!(url = %opts.redacted_url(), "layer store: Redis");
    Ok(Arc::new(RedisStore::new(opts)))
}

/// The shared key from `--cache-key-file` (surrounding whitespace trimmed; at least 16 bytes).
fn read_key(args: &StoreArgs) -> anyhow::Result<Vec<u8>> {
    let Some(path) = &args.cache_key_file else {
        bail!("--cache needs --cache-key-file: Redis entries are sealed with a shared key");
    };
    let raw =
        std::fs::read(path).with_context(|| format!("--cache-key-file {}", path.display()))?;
    let key = raw.trim_ascii().to_vec();
    if key.len() < 16 {
        bail!(
            "--cache-key-file {}: the key must have at least 16 bytes (e.g. `openssl rand -hex 32`)",
            path.display()
        );
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(extra: &[&str]) -> StoreArgs {
        let mut v = vec!["imgaudit", "img"];
        v.extend_from_slice(extra);
        crate::cli::Cli::parse_from(v).audit.store
    }

    #[test]
    fn cache_dir_follows_xdg_then_home() {
        let env = |xdg: Option<&'static str>, home: Option<&'static str>| {
            move |k: &str| match k {
                "XDG_CACHE_HOME" => xdg.map(OsString::from),
                "HOME" => home.map(OsString::from),
                _ => None,
            }
        };
        let a = args(&[]);
        assert_eq!(
            dir(&a, env(Some("/x"), Some("/h"))),
            Some("/x/imgaudit".into())
        );
        assert_eq!(
            dir(&a, env(Some("rel"), Some("/h"))),
            Some("/h/.cache/imgaudit".into())
        );
        assert_eq!(
            dir(&a, env(None, Some("/h"))),
            Some("/h/.cache/imgaudit".into())
        );
        assert_eq!(dir(&a, env(None, None)), None);
        let a = args(&["--cache-dir", "/d"]);
        assert_eq!(dir(&a, env(Some("/x"), None)), Some("/d".into()));
        assert!(open(&args(&["--no-cache"]), env(Some("/x"), None))
            .unwrap()
            .is_none());
    }
}
