//! Which files' content is kept as layers stream past, declared by the code that reads it.
//!
//! Every consumer of file content (each rule in [`crate::rules::RULES`], the loader check
//! `crate::system::ldso`, the package database reader `crate::system::pkgdb`) declares the
//! paths it reads as [`ContentRead`] rows next to its code, the way trivy's analyzers declare
//! `Required()`. The auditor gathers them into one [`ContentPlan`]
//! ([`crate::audit::content_plan`]): the layer walk keeps a file's content only when the plan
//! covers its path, and `crate::fs::MergedFs::content` checks, in builds with debug
//! assertions (every test), that each path asked for is covered, so a consumer that forgets
//! its declaration fails its tests instead of silently seeing "no such file".
//!
//! The plan is also part of what decides a layer's analysis: its [`ContentPlan::describe`]
//! text goes into [`crate::layer::analysis_fingerprint`].

use crate::limits::{Limits, CAPTURED_FRAGMENT_BYTES, CAPTURED_MARKER_BYTES};
use crate::path;

/// Which paths a [`ContentRead`] covers. Paths are root-relative (`crate::path`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PathMatch {
    /// Exactly this path.
    Exact(&'static str),
    /// Any file directly in this directory.
    In(&'static str),
    /// A file directly in `dir` whose name starts with `prefix` and ends with `suffix`.
    NameIn {
        /// The directory.
        dir: &'static str,
        /// Start of the file name.
        prefix: &'static str,
        /// End of the file name.
        suffix: &'static str,
    },
    /// A file with this name, in any directory.
    Named(&'static str),
}

impl PathMatch {
    /// Whether `p` is covered.
    pub fn matches(&self, p: &str) -> bool {
        match *self {
            Self::Exact(e) => p == e,
            Self::In(d) => path::parent(p) == d && !p.is_empty(),
            Self::NameIn {
                dir,
                prefix,
                suffix,
            } => {
                let name = path::file_name(p);
                path::parent(p) == dir
                    && name.len() >= prefix.len() + suffix.len()
                    && name.starts_with(prefix)
                    && name.ends_with(suffix)
            }
            Self::Named(n) => path::file_name(p) == n,
        }
    }
}

/// How much of a covered file is kept. Every bound is also cut at
/// [`Limits::max_captured_file_bytes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReadBound {
    /// The whole file, up to [`Limits::max_captured_file_bytes`].
    Whole,
    /// A configuration fragment: [`CAPTURED_FRAGMENT_BYTES`].
    Fragment,
    /// A marker file whose first line is all that is read: [`CAPTURED_MARKER_BYTES`].
    Marker,
}

impl ReadBound {
    fn bytes(self, limits: &Limits) -> u64 {
        let max = limits.max_captured_file_bytes;
        match self {
            Self::Whole => max,
            Self::Fragment => CAPTURED_FRAGMENT_BYTES.min(max),
            Self::Marker => CAPTURED_MARKER_BYTES.min(max),
        }
    }
}

/// One declared read: the paths, and how much of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ContentRead {
    /// Which paths.
    pub path: PathMatch,
    /// How much.
    pub bound: ReadBound,
}

impl ContentRead {
    /// All of the file at `p`.
    pub const fn whole(p: &'static str) -> Self {
        Self {
            path: PathMatch::Exact(p),
            bound: ReadBound::Whole,
        }
    }
}

/// The union of every consumer's [`ContentRead`]s: what the layer walk keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContentPlan {
    /// Sorted and deduplicated.
    reads: Vec<ContentRead>,
}

impl ContentPlan {
    /// The plan of these reads (in any order, repeats allowed).
    pub fn new<'a>(reads: impl IntoIterator<Item = &'a ContentRead>) -> Self {
        let mut reads: Vec<ContentRead> = reads.into_iter().copied().collect();
        reads.sort();
        reads.dedup();
        Self { reads }
    }

    /// How many bytes of the file at `p` to keep, if any: the largest bound of the reads
    /// that cover it.
    pub fn bound(&self, p: &str, limits: &Limits) -> Option<u64> {
        self.reads
            .iter()
            .filter(|r| r.path.matches(p))
            .map(|r| r.bound.bytes(limits))
            .max()
    }

    /// Whether some read covers `p`.
    pub fn covers(&self, p: &str) -> bool {
        self.reads.iter().any(|r| r.path.matches(p))
    }

    /// A stable text of the plan, one read per line in sorted order (part of
    /// [`crate::layer::analysis_fingerprint`]).
    pub fn describe(&self) -> String {
        self.reads.iter().map(|r| format!("{r:?}\n")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &[ContentRead] = &[
        ContentRead::whole("etc/passwd"),
        ContentRead {
            path: PathMatch::In("etc/ld.so.conf.d"),
            bound: ReadBound::Fragment,
        },
        ContentRead {
            path: PathMatch::NameIn {
                dir: "etc",
                prefix: "ld-musl-",
                suffix: ".path",
            },
            bound: ReadBound::Fragment,
        },
        ContentRead {
            path: PathMatch::Named("VERSION"),
            bound: ReadBound::Marker,
        },
        ContentRead::whole("etc/VERSION"),
    ];

    #[test]
    fn paths_and_bounds() {
        let plan = ContentPlan::new(PLAN);
        let l = Limits::default();
        let max = l.max_captured_file_bytes;
        for (p, want) in [
            ("etc/passwd", Some(max)),
            ("etc/passwdx", None),
            ("x/etc/passwd", None),
            ("etc/ld.so.conf.d/libc.conf", Some(CAPTURED_FRAGMENT_BYTES)),
            ("etc/ld.so.conf.d/sub/x.conf", None),
            ("etc/ld.so.conf.d", None),
            ("etc/ld-musl-x86_64.path", Some(CAPTURED_FRAGMENT_BYTES)),
            ("etc/ld-musl-.path", Some(CAPTURED_FRAGMENT_BYTES)),
            ("etc/ld-musl.path", None),
            ("usr/etc/ld-musl-x86_64.path", None),
            ("usr/local/go/VERSION", Some(CAPTURED_MARKER_BYTES)),
            ("VERSION", Some(CAPTURED_MARKER_BYTES)),
            ("etc/VERSION", Some(max)),
            ("", None),
        ] {
            assert_eq!(plan.bound(p, &l), want, "{p}");
            assert_eq!(plan.covers(p), want.is_some(), "{p}");
        }
        // max_captured_file_bytes cuts every bound.
        let small = Limits {
            max_captured_file_bytes: 100,
            ..Limits::default()
        };
        assert_eq!(plan.bound("etc/ld.so.conf.d/a", &small), Some(100));
        assert_eq!(plan.bound("a/VERSION", &small), Some(100));
    }

    #[test]
    fn description_is_order_free_and_names_every_read() {
        let mut rev = PLAN.to_vec();
        rev.reverse();
        rev.push(PLAN[0]);
        let (a, b) = (ContentPlan::new(PLAN), ContentPlan::new(&rev));
        assert_eq!(a, b);
        assert_eq!(a.describe(), b.describe());
        assert_eq!(a.describe().lines().count(), PLAN.len());
        assert!(a.describe().contains("ld-musl-"));
        assert_ne!(ContentPlan::new(&PLAN[1..]).describe(), a.describe());
    }
}
