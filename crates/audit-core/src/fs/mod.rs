//! The merged view of an image's filesystem, with provenance.
//!
//! Layers are applied base first with OCI whiteout semantics (image-spec `layer.md`):
//! `.wh.NAME` deletes NAME from lower layers, `.wh..wh..opq` hides a directory's lower
//! children, both regardless of their position in the tar, and never touching what the same
//! layer creates. A non-directory replaces whatever was at its path (a directory with its
//! subtree); a directory over a directory only updates attributes. Parent directories of an
//! entry are resolved through symlinks already in the view (containerd does the same), so
//! `lib/x` lands in `usr/lib/x` when `lib -> usr/lib`. Hard links share their target's
//! content as it was when the link was applied.
//!
//! Content that a later layer deleted or replaced is kept as a [`Shadow`]: its bytes are
//! still in the earlier blob (and count as wasted), and secrets in it are still exposed.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

use serde::Serialize;

use crate::inspect::reads::ContentPlan;
use crate::inspect::FileFacts;
use crate::layer::{Anomaly, Entry, EntryKind};
use crate::limits::MAX_SYMLINK_HOPS;
use crate::path;

/// What a node is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "type", content = "target")]
pub(crate) enum NodeKind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link (target verbatim).
    Symlink(Box<str>),
    /// Character device.
    CharDevice,
    /// Block device.
    BlockDevice,
    /// FIFO.
    Fifo,
}

/// One path of the final filesystem.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    /// What it is.
    pub kind: NodeKind,
    /// Permission bits incl. setuid/setgid/sticky.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Content length (files).
    pub size: u64,
    /// Layer index that wrote this version (implicit directories: the layer that needed them).
    pub layer: usize,
    /// Carries file capabilities.
    pub capabilities: bool,
    /// Inspection results.
    pub facts: Option<Arc<FileFacts>>,
}

impl Node {
    /// A regular file.
    pub(crate) fn is_file(&self) -> bool {
        self.kind == NodeKind::File
    }

    /// A directory.
    pub(crate) fn is_dir(&self) -> bool {
        self.kind == NodeKind::Dir
    }

    /// Any execute bit set.
    pub(crate) fn is_executable(&self) -> bool {
        self.mode & 0o111 != 0
    }
}

/// How a shadowed file left the final view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Removal {
    /// Deleted by a `.wh.` whiteout.
    Whiteout,
    /// Hidden by an opaque directory.
    Opaque,
    /// Replaced by a new entry at the same path (or an ancestor).
    Overwritten,
}

/// A file that is in some layer's blob but not in the final view.
#[derive(Clone, Debug)]
pub(crate) struct Shadow {
    /// Its path when it was added.
    pub path: Box<str>,
    /// Layer whose blob holds its bytes.
    pub added_in: usize,
    /// Layer that removed it.
    pub removed_in: usize,
    /// How.
    pub how: Removal,
    /// Bytes.
    pub size: u64,
    /// Inspection results.
    pub facts: Option<Arc<FileFacts>>,
}

/// A path lookup failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum FsError {
    /// More than [`MAX_SYMLINK_HOPS`] symlinks on the way (a loop, or a very long chain).
    #[error("{path}: too many levels of symbolic links")]
    Loop {
        /// The path looked up.
        path: String,
    },
}

/// A layer anomaly with its layer index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct LayerAnomaly {
    /// Layer index.
    pub layer: usize,
    /// What.
    #[serde(flatten)]
    pub anomaly: Anomaly,
}

/// The merged filesystem.
#[derive(Debug)]
pub(crate) struct MergedFs {
    nodes: BTreeMap<Box<str>, Node>,
    shadows: Vec<Shadow>,
    anomalies: Vec<LayerAnomaly>,
    /// The content plan the layers were walked with; [`Self::content`] checks against it.
    reads: &'static ContentPlan,
}

impl MergedFs {
    /// An empty filesystem: just the root directory. `reads` is the plan the layers applied
    /// to it were walked with (the auditor's is [`crate::audit::content_plan`]).
    pub(crate) fn new(reads: &'static ContentPlan) -> Self {
        let mut nodes = BTreeMap::new();
        nodes.insert("".into(), dir_node(0o755, 0));
        Self {
            nodes,
            shadows: Vec::new(),
            anomalies: Vec::new(),
            reads,
        }
    }

    /// Applies one layer's entries on top.
    pub(crate) fn apply(&mut self, layer: usize, entries: &[Entry]) {
        let mut created: BTreeSet<Box<str>> = BTreeSet::new();
        // Directories this layer already made opaque and paths it already whited out: a
        // second marker would find only this layer's own entries, which it keeps, after
        // walking all of them again.
        let (mut opaqued, mut whited): (HashSet<String>, HashSet<String>) =
            (HashSet::new(), HashSet::new());
        for e in entries {
            match &e.kind {
                EntryKind::Opaque => {
                    let Ok(dir) = self.resolve(&e.path, true) else {
                        self.anomaly(
                            layer,
                            &e.path,
                            "opaque whiteout under a symlink loop; ignored",
                        );
                        continue;
                    };
                    if !opaqued.insert(dir.clone()) {
                        continue;
                    }
                    let victims: Vec<Box<str>> =
                        self.descendants(&dir).map(|(k, _)| k.clone()).collect();
                    self.remove_all(victims, &created, layer, Removal::Opaque);
                }
                EntryKind::Whiteout => {
                    let Ok(target) = self.resolve_parent(&e.path) else {
                        self.anomaly(layer, &e.path, "whiteout under a symlink loop; ignored");
                        continue;
                    };
                    if !self.nodes.contains_key(target.as_str())
                        || created.contains(target.as_str())
                        || !whited.insert(target.clone())
                    {
                        continue;
                    }
                    let mut victims: Vec<Box<str>> = vec![target.clone().into()];
                    victims.extend(self.descendants(&target).map(|(k, _)| k.clone()));
                    self.remove_all(victims, &created, layer, Removal::Whiteout);
                }
                kind => {
                    let Ok(p) = self.resolve_parent(&e.path) else {
                        self.anomaly(
                            layer,
                            &e.path,
                            "parent directory is a symlink loop; entry skipped",
                        );
                        continue;
                    };
                    if p.is_empty() && *kind != EntryKind::Dir {
                        continue;
                    }
                    let node = match kind {
                        EntryKind::Hardlink(t) => {
                            let target = self
                                .resolve_parent(t)
                                .ok()
                                .and_then(|t| self.nodes.get(t.as_str()).cloned());
                            match target {
                                Some(n) if n.is_file() => Node { layer, ..n },
                                Some(_) => {
                                    self.anomaly(
                                        layer,
                                        &e.path,
                                        "hard link to a non-regular file; entry skipped",
                                    );
                                    continue;
                                }
                                None => {
                                    self.anomaly(
                                        layer,
                                        &e.path,
                                        &format!(
                                            "hard link target /{t} does not exist; entry skipped"
                                        ),
                                    );
                                    continue;
                                }
                            }
                        }
                        k => Node {
                            kind: match k {
                                EntryKind::File => NodeKind::File,
                                EntryKind::Dir => NodeKind::Dir,
                                EntryKind::Symlink(t) => NodeKind::Symlink(t.clone()),
                                EntryKind::CharDevice => NodeKind::CharDevice,
                                EntryKind::BlockDevice => NodeKind::BlockDevice,
                                _ => NodeKind::Fifo,
                            },
                            mode: e.mode,
                            uid: e.uid,
                            gid: e.gid,
                            size: e.size,
                            layer,
                            capabilities: e.capabilities,
                            facts: e.facts.clone(),
                        },
                    };
                    self.insert(p, node, layer, &mut created);
                }
            }
        }
    }

    fn anomaly(&mut self, layer: usize, path: &str, problem: &str) {
        self.anomalies.push(LayerAnomaly {
            layer,
            anomaly: Anomaly {
                path: path::display(path),
                problem: problem.into(),
            },
        });
    }

    /// Records layer anomalies found while walking its tar.
    pub(crate) fn add_anomalies(&mut self, layer: usize, anomalies: &[Anomaly]) {
        self.anomalies.extend(
            anomalies
                .iter()
                .cloned()
                .map(|anomaly| LayerAnomaly { layer, anomaly }),
        );
    }

    fn insert(&mut self, p: String, node: Node, layer: usize, created: &mut BTreeSet<Box<str>>) {
        if let Some(old) = self.nodes.get_mut(p.as_str()) {
            if old.is_dir() && node.is_dir() {
                old.mode = node.mode;
                old.uid = node.uid;
                old.gid = node.gid;
                old.layer = layer;
                created.insert(p.into());
                return;
            }
            let mut victims: Vec<Box<str>> = vec![p.clone().into()];
            victims.extend(self.descendants(&p).map(|(k, _)| k.clone()));
            self.remove_all(victims, &BTreeSet::new(), layer, Removal::Overwritten);
        }
        // Make sure every ancestor is a directory.
        let mut anc = String::new();
        for comp in p
            .split('/')
            .collect::<Vec<_>>()
            .iter()
            .take(p.split('/').count().saturating_sub(1))
        {
            anc = path::child(&anc, comp);
            match self.nodes.get(anc.as_str()) {
                Some(n) if n.is_dir() => {}
                Some(_) => {
                    let mut victims: Vec<Box<str>> = vec![anc.clone().into()];
                    victims.extend(self.descendants(&anc).map(|(k, _)| k.clone()));
                    self.remove_all(victims, &BTreeSet::new(), layer, Removal::Overwritten);
                    self.nodes
                        .insert(anc.clone().into(), dir_node(0o755, layer));
                }
                None => {
                    self.nodes
                        .insert(anc.clone().into(), dir_node(0o755, layer));
                }
            }
        }
        created.insert(p.clone().into());
        self.nodes.insert(p.into(), node);
    }

    /// Removes `victims` except what the current layer created (and the directories that
    /// hold such paths), recording removed files as shadows.
    fn remove_all(
        &mut self,
        victims: Vec<Box<str>>,
        keep: &BTreeSet<Box<str>>,
        layer: usize,
        how: Removal,
    ) {
        for v in victims {
            if keep.contains(&v) || has_descendant(keep, &v) {
                continue;
            }
            if let Some(n) = self.nodes.remove(&v) {
                if n.is_file() {
                    self.shadows.push(Shadow {
                        path: v,
                        added_in: n.layer,
                        removed_in: layer,
                        how,
                        size: n.size,
                        facts: n.facts,
                    });
                }
            }
        }
    }

    /// Entries strictly below `dir` (the whole tree for the root), in path order.
    pub(crate) fn descendants<'a>(
        &'a self,
        dir: &str,
    ) -> impl Iterator<Item = (&'a Box<str>, &'a Node)> + 'a {
        let (lo, hi): (String, String) = if dir.is_empty() {
            (String::new(), String::from("\u{10ffff}"))
        } else {
            (format!("{dir}/"), format!("{dir}0"))
        };
        let skip_root = dir.is_empty();
        self.nodes
            .range::<str, _>((
                std::ops::Bound::Included(lo.as_str()),
                std::ops::Bound::Excluded(hi.as_str()),
            ))
            .filter(move |(k, _)| !(skip_root && k.is_empty()))
    }

    /// Every node, in path order (root first).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.nodes.iter().map(|(k, v)| (&**k, v))
    }

    /// Files removed or replaced by later layers.
    pub(crate) fn shadows(&self) -> &[Shadow] {
        &self.shadows
    }

    /// Oddities found while walking or applying layers.
    pub(crate) fn anomalies(&self) -> &[LayerAnomaly] {
        &self.anomalies
    }

    /// Number of nodes.
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The node at exactly `p` (no symlink resolution at all).
    pub(crate) fn get(&self, p: &str) -> Option<&Node> {
        self.nodes.get(p)
    }

    /// Resolves `p` (absolute or root-relative) through symlinks inside the image root.
    /// With `follow_last = false` the last component is not followed (`lstat`). `..` at the
    /// root stays at the root. The result may not exist.
    pub(crate) fn resolve(&self, p: &str, follow_last: bool) -> Result<String, FsError> {
        let mut queue: std::collections::VecDeque<String> = p
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .map(str::to_string)
            .collect();
        let mut cur: Vec<String> = Vec::new();
        let mut hops = 0u32;
        while let Some(c) = queue.pop_front() {
            if c == "." {
                continue;
            }
            if c == ".." {
                cur.pop();
                continue;
            }
            let cand = if cur.is_empty() {
                c.clone()
            } else {
                format!("{}/{c}", cur.join("/"))
            };
            let is_last = queue.is_empty();
            match self.nodes.get(cand.as_str()) {
                Some(Node {
                    kind: NodeKind::Symlink(t),
                    ..
                }) if !is_last || follow_last => {
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return Err(FsError::Loop {
                            path: path::display(p.trim_start_matches('/')),
                        });
                    }
                    if t.starts_with('/') {
                        cur.clear();
                    }
                    for part in t.split('/').filter(|c| !c.is_empty()).rev() {
                        queue.push_front(part.to_string());
                    }
                }
                _ => cur.push(c),
            }
        }
        Ok(cur.join("/"))
    }

    fn resolve_parent(&self, p: &str) -> Result<String, FsError> {
        let dir = self.resolve(path::parent(p), true)?;
        Ok(path::child(&dir, path::file_name(p)))
    }

    /// Looks `p` up following symlinks; returns the resolved path and its node.
    pub(crate) fn lookup(&self, p: &str) -> Result<Option<(String, &Node)>, FsError> {
        let r = self.resolve(p, true)?;
        Ok(self.nodes.get(r.as_str()).map(|n| (r, n)))
    }

    /// The kept content of the file at `p` (following symlinks). `p` is a path the caller's
    /// code names; it must be covered by a declared read ([`crate::inspect::reads`]), which
    /// builds with debug assertions (all tests) check: an undeclared path would silently
    /// have no content.
    pub(crate) fn content(&self, p: &str) -> Option<&[u8]> {
        self.check_declared(p);
        self.content_named_by_image(p)
    }

    /// The kept content of `node`, found at `p` while walking the tree; `p` must be covered
    /// by a declared read, as for [`Self::content`].
    pub(crate) fn content_of<'a>(&self, p: &str, node: &'a Node) -> Option<&'a [u8]> {
        self.check_declared(p);
        node.facts.as_ref()?.content.as_deref()
    }

    /// The kept content of the file at `p`, a path the image itself names (an `include` line
    /// of `ld.so.conf`): it may lie outside every declared read, and then has no content.
    pub(crate) fn content_named_by_image(&self, p: &str) -> Option<&[u8]> {
        let (_, n) = self.lookup(p).ok()??;
        n.facts.as_ref()?.content.as_deref()
    }

    fn check_declared(&self, p: &str) {
        debug_assert!(
            self.reads.covers(p),
            "the content of /{p} is read but no ContentRead declares it (see inspect::reads)"
        );
    }

    /// Total bytes of regular files at and below `p`.
    pub(crate) fn bytes_under(&self, p: &str) -> u64 {
        let own = self
            .nodes
            .get(p)
            .filter(|n| n.is_file())
            .map_or(0, |n| n.size);
        own + self
            .descendants(p)
            .filter(|(_, n)| n.is_file())
            .map(|(_, n)| n.size)
            .sum::<u64>()
    }
}

fn has_descendant(set: &BTreeSet<Box<str>>, dir: &str) -> bool {
    if set.is_empty() {
        return false;
    }
    let lo = format!("{dir}/");
    let hi = format!("{dir}0");
    set.range::<str, _>((
        std::ops::Bound::Included(lo.as_str()),
        std::ops::Bound::Excluded(hi.as_str()),
    ))
    .next()
    .is_some()
}

fn dir_node(mode: u32, layer: usize) -> Node {
    Node {
        kind: NodeKind::Dir,
        mode,
        uid: 0,
        gid: 0,
        size: 0,
        layer,
        capabilities: false,
        facts: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testutil::entry as e;

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "no ContentRead declares it")]
    fn content_of_an_undeclared_path_fails_in_tests() {
        let fs = MergedFs::new(crate::audit::content_plan());
        fs.content("etc/shadow");
    }

    #[test]
    fn declared_and_image_named_paths_read_without_complaint() {
        let fs = MergedFs::new(crate::audit::content_plan());
        assert_eq!(fs.content("etc/passwd"), None);
        assert_eq!(fs.content_named_by_image("etc/shadow"), None);
    }

    fn f(p: &str, size: u64) -> Entry {
        e(p, EntryKind::File, size)
    }
    fn d(p: &str) -> Entry {
        e(p, EntryKind::Dir, 0)
    }

    #[test]
    fn whiteouts_hit_lower_layers_only() {
        let mut fs = MergedFs::new(crate::audit::content_plan());
        fs.apply(0, &[d("a"), f("a/x", 10), f("a/y", 20), f("b", 5)]);
        // Whiteout of a dir and its re-creation in the same layer, in either order.
        fs.apply(
            1,
            &[
                f("a/z", 1),
                e("a", EntryKind::Whiteout, 0),
                e("b", EntryKind::Whiteout, 0),
            ],
        );
        assert!(fs.get("a/x").is_none());
        assert!(fs.get("a/y").is_none());
        assert!(fs.get("a/z").is_some());
        assert!(fs.get("a").unwrap().is_dir());
        assert!(fs.get("b").is_none());
        let wasted: u64 = fs.shadows().iter().map(|s| s.size).sum();
        assert_eq!(wasted, 35);
        assert!(fs
            .shadows()
            .iter()
            .all(|s| s.added_in == 0 && s.removed_in == 1));
    }

    #[test]
    fn opaque_is_order_independent() {
        let mut fs = MergedFs::new(crate::audit::content_plan());
        fs.apply(0, &[d("etc"), f("etc/a", 1), f("etc/b", 1)]);
        fs.apply(
            1,
            &[f("etc/c", 1), e("etc", EntryKind::Opaque, 0), f("etc/d", 1)],
        );
        let names: Vec<&str> = fs.descendants("etc").map(|(k, _)| &**k).collect();
        assert_eq!(names, vec!["etc/c", "etc/d"]);
    }

    /// Many opaque markers for one directory, or whiteouts of one path, in one layer (a tar
    /// of repeated headers gzips to almost nothing): each takes effect once, not one walk
    /// of the layer's new entries per marker.
    #[test]
    fn repeated_opaque_markers_count_once() {
        let n = 20_000;
        let mut fs = MergedFs::new(crate::audit::content_plan());
        fs.apply(0, &[d("etc"), f("etc/old", 1), d("usr"), f("usr/old", 1)]);
        let mut top: Vec<Entry> = (0..n).map(|i| f(&format!("etc/new{i}"), 1)).collect();
        top.extend((0..n).map(|_| e("etc", EntryKind::Opaque, 0)));
        // The same with whiteouts of a lower directory the layer fills again.
        top.extend((0..n).map(|i| f(&format!("usr/new{i}"), 1)));
        top.extend((0..n).map(|_| e("usr", EntryKind::Whiteout, 0)));
        fs.apply(1, &top);
        assert!(fs.get("etc/old").is_none() && fs.get("usr/old").is_none());
        assert_eq!(fs.descendants("etc").count(), n);
        assert_eq!(fs.descendants("usr").count(), n);
        assert_eq!(fs.shadows().len(), 2);
    }

    #[test]
    fn file_replaces_dir_and_dir_merges() {
        let mut fs = MergedFs::new(crate::audit::content_plan());
        fs.apply(0, &[d("x"), f("x/1", 3), d("y"), f("y/1", 4)]);
        let mut yd = d("y");
        yd.mode = 0o700;
        fs.apply(1, &[f("x", 7), yd]);
        assert!(fs.get("x").unwrap().is_file());
        assert!(fs.get("x/1").is_none());
        assert_eq!(fs.get("y").unwrap().mode, 0o700);
        assert!(fs.get("y/1").is_some());
    }

    #[test]
    fn parents_resolve_through_symlinks() {
        let mut fs = MergedFs::new(crate::audit::content_plan());
        fs.apply(
            0,
            &[
                d("usr"),
                d("usr/lib"),
                e("lib", EntryKind::Symlink("usr/lib".into()), 0),
            ],
        );
        fs.apply(1, &[f("lib/libc.so.6", 9)]);
        assert!(fs.get("usr/lib/libc.so.6").is_some());
        assert!(fs.get("lib").is_some());
        assert_eq!(
            fs.resolve("/lib/libc.so.6", true).unwrap(),
            "usr/lib/libc.so.6"
        );
    }

    #[test]
    fn absolute_symlinks_stay_inside_and_loops_are_typed() {
        let mut fs = MergedFs::new(crate::audit::content_plan());
        fs.apply(
            0,
            &[
                e(
                    "escape",
                    EntryKind::Symlink("/../../../../etc/shadow".into()),
                    0,
                ),
                e("a", EntryKind::Symlink("b".into()), 0),
                e("b", EntryKind::Symlink("a".into()), 0),
                e("self", EntryKind::Symlink("self/x".into()), 0),
            ],
        );
        assert_eq!(fs.resolve("escape", true).unwrap(), "etc/shadow");
        assert!(matches!(fs.resolve("a", true), Err(FsError::Loop { .. })));
        assert!(matches!(
            fs.resolve("self", true),
            Err(FsError::Loop { .. })
        ));
        assert_eq!(fs.resolve("a", false).unwrap(), "a");
    }

    #[test]
    fn hard_links_copy_content_and_report_missing_targets() {
        let mut fs = MergedFs::new(crate::audit::content_plan());
        fs.apply(0, &[f("bin/busybox", 100)]);
        fs.apply(
            1,
            &[
                e("bin/sh", EntryKind::Hardlink("bin/busybox".into()), 0),
                e("bin/ls", EntryKind::Hardlink("bin/nope".into()), 0),
            ],
        );
        assert_eq!(fs.get("bin/sh").unwrap().size, 100);
        assert!(fs.get("bin/ls").is_none());
        assert_eq!(fs.anomalies().len(), 1);
    }
}
