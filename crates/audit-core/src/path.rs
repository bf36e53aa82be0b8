//! Image paths: cleaned, root-relative, `/`-separated UTF-8.
//!
//! A path inside an image is stored without its leading `/` (the root is the empty
//! string). Tar entry names are cleaned lexically (`./a//b/../c` → `a/c`); a name that
//! climbs above the root is rejected, never clamped, because a layer that contains one is
//! hostile and its entry must not land anywhere.

/// Why an entry name was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PathProblem {
    /// `..` climbs above the image root.
    Traversal,
    /// Longer than the limit.
    TooLong,
    /// Not UTF-8 (stored lossily elsewhere; rejected here to keep lookups exact).
    NotUtf8,
    /// Contains a NUL byte.
    Nul,
}

/// Cleans a tar entry name into a root-relative path. `"."`, `"./"` and `"/"` clean to
/// the root, `""`.
pub(crate) fn clean(raw: &[u8], max_len: usize) -> Result<String, PathProblem> {
    if raw.len() > max_len {
        return Err(PathProblem::TooLong);
    }
    if raw.contains(&0) {
        return Err(PathProblem::Nul);
    }
    let s = std::str::from_utf8(raw).map_err(|_| PathProblem::NotUtf8)?;
    let mut parts: Vec<&str> = Vec::new();
    for c in s.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(PathProblem::Traversal);
                }
            }
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// Joins a root-relative directory and a relative path lexically, clamping `..` at the root
/// (the way path lookup inside a chroot behaves).
pub(crate) fn join_clamped(dir: &str, rel: &str) -> String {
    let mut parts: Vec<&str> = if rel.starts_with('/') {
        Vec::new()
    } else {
        dir.split('/').filter(|c| !c.is_empty()).collect()
    };
    for c in rel.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

/// The parent directory of a root-relative path (`""` for top-level names and the root).
pub(crate) fn parent(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// The last component.
pub(crate) fn file_name(path: &str) -> &str {
    path.rfind('/').map_or(path, |i| &path[i + 1..])
}

/// `a` + `/` + `b`, without doubling separators at the root.
pub(crate) fn child(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Renders a root-relative path as an absolute one for humans.
pub(crate) fn display(path: &str) -> String {
    format!("/{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans() {
        assert_eq!(clean(b"./etc//passwd", 4096).unwrap(), "etc/passwd");
        assert_eq!(clean(b"/etc/./passwd", 4096).unwrap(), "etc/passwd");
        assert_eq!(clean(b"a/b/../c/", 4096).unwrap(), "a/c");
        assert_eq!(clean(b"./", 4096).unwrap(), "");
        assert_eq!(
            clean(b"../../outside.txt", 4096),
            Err(PathProblem::Traversal)
        );
        assert_eq!(clean(b"a/../../b", 4096), Err(PathProblem::Traversal));
        assert_eq!(clean(b"abc", 2), Err(PathProblem::TooLong));
        assert_eq!(clean(b"a\0b", 10), Err(PathProblem::Nul));
        assert_eq!(clean(b"\xff", 10), Err(PathProblem::NotUtf8));
    }

    #[test]
    fn joins_and_splits() {
        assert_eq!(
            join_clamped("usr/lib", "../../../../etc/shadow"),
            "etc/shadow"
        );
        assert_eq!(join_clamped("usr/lib", "/lib/x"), "lib/x");
        assert_eq!(join_clamped("", "a/./b"), "a/b");
        assert_eq!(parent("a/b/c"), "a/b");
        assert_eq!(parent("a"), "");
        assert_eq!(file_name("a/b/c"), "c");
        assert_eq!(child("", "x"), "x");
        assert_eq!(child("a", "x"), "a/x");
    }
}
