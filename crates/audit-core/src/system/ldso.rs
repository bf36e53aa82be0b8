//! Can this binary start? The ELF interpreter and every `DT_NEEDED` library, resolved inside
//! the image's own merged filesystem with the real loaders' rules.
//!
//! glibc (`ld.so(8)`): a name with `/` is a path; then `DT_RPATH` of the object and of the
//! objects that loaded it (only when the object has no `DT_RUNPATH`), `LD_LIBRARY_PATH`
//! (from the image's `Env`; ignored for setuid binaries), the object's own `DT_RUNPATH`,
//! `/etc/ld.so.cache`, then the default directories (the multiarch ones Debian adds,
//! `lib64` ones Fedora uses, then `/lib`, `/usr/lib`, each with its `glibc-hwcaps`
//! subdirectories). Candidates of the wrong class or machine are skipped, as glibc does.
//! `ld.so.conf` is only read by `ldconfig` to build the cache: a directory listed there but
//! missing from the cache does not count, and the report says so.
//!
//! musl (`ldso/dynlink.c`): reserved names (`libc.so`, `libpthread.so.0`, `libdl.so.2` …)
//! are the loader itself; then `LD_LIBRARY_PATH`, `DT_RUNPATH`/`DT_RPATH` of the object and
//! its loaders, then `/etc/ld-musl-<arch>.path` or `/lib:/usr/local/lib:/usr/lib`.
//!
//! Symbol versions are checked too: every `GLIBC_2.x` (or other) version an object needs
//! from a library must be defined by the library that resolved — "version `GLIBC_2.34' not
//! found" is a start failure like a missing library.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::rc::Rc;

use serde::Serialize;

use crate::fs::{MergedFs, Node};
use crate::inspect::elf::{ElfClass, ElfInfo};
use crate::inspect::reads::{ContentRead, PathMatch, ReadBound};
use crate::limits::{
    MAX_LD_CACHE_ENTRIES, MAX_LD_CACHE_KEPT_BYTES, MAX_LD_CACHE_NAME_BYTES, MAX_LD_CONF_DIRS,
    MAX_LD_CONF_INCLUDES, MAX_LIBRARY_DEPTH, MAX_LOADER_LOOKUPS, MAX_SEARCHED_LISTED,
};
use crate::path;
use crate::platform::Platform;

/// The files the loader check reads: glibc's cache and `ld.so.conf` (with the fragments the
/// usual `include /etc/ld.so.conf.d/*.conf` names), and musl's `/etc/ld-musl-<arch>.path`.
pub(crate) const READS: &[ContentRead] = &[
    ContentRead::whole("etc/ld.so.cache"),
    ContentRead::whole("etc/ld.so.conf"),
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
];

/// The C library family a binary's interpreter belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LoaderKind {
    /// glibc's `ld-linux*.so` / `ld64.so`.
    Glibc,
    /// musl's `ld-musl-*.so.1`.
    Musl,
}

/// The interpreter check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "status")]
pub enum InterpreterStatus {
    /// Resolves to an ELF file of the right machine.
    Found {
        /// Resolved path.
        path: String,
    },
    /// Nothing at that path (after following symlinks).
    Missing,
    /// Something is there but it is not a matching ELF file.
    Unusable {
        /// Resolved path.
        path: String,
        /// Why.
        reason: String,
    },
    /// `PT_INTERP` itself is malformed (empty, not NUL-terminated, longer than `PATH_MAX`):
    /// the kernel refuses the binary with `ENOEXEC` before any loader runs.
    Malformed {
        /// What is wrong with it.
        reason: String,
    },
}

/// A needed library that no search found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MissingLibrary {
    /// The `DT_NEEDED` name.
    pub name: String,
    /// The object that needs it (path).
    pub needed_by: String,
    /// Directories searched, in order.
    pub searched: Vec<String>,
    /// A hint, e.g. found in an `ld.so.conf` directory but the cache is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// A symbol version a library does not define.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct MissingVersion {
    /// Version name, e.g. `GLIBC_2.34`.
    pub version: String,
    /// Library name as needed.
    pub library: String,
    /// Path of the library that resolved.
    pub provider: String,
    /// The object that needs the version.
    pub needed_by: String,
}

/// A resolved dependency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResolvedLibrary {
    /// The `DT_NEEDED` name.
    pub name: String,
    /// Where it resolved (or `(loader)` for names the loader itself provides).
    pub path: String,
}

/// Whether an executable can start inside the image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Runnability {
    /// Which loader rules applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loader: Option<LoaderKind>,
    /// The interpreter check; absent for static binaries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interpreter: Option<InterpreterStatus>,
    /// Every library that resolved, breadth first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resolved: Vec<ResolvedLibrary>,
    /// Needed libraries that did not resolve.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<MissingLibrary>,
    /// Symbol versions not defined by the library that resolved.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_versions: Vec<MissingVersion>,
    /// A dependency that could not be examined (symlink loop, uninspected file).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

impl Runnability {
    /// Whether the binary can start, as far as the loader is concerned.
    pub fn ok(&self) -> bool {
        !matches!(
            self.interpreter,
            Some(
                InterpreterStatus::Missing
                    | InterpreterStatus::Unusable { .. }
                    | InterpreterStatus::Malformed { .. }
            )
        ) && self.missing.is_empty()
            && self.missing_versions.is_empty()
    }
}

/// Image-wide loader configuration, built once per image.
pub(crate) struct Loader<'a> {
    fs: &'a MergedFs,
    ld_library_path: Vec<String>,
    cache: Option<HashMap<String, Vec<String>>>,
    conf_dirs: Vec<String>,
}

impl<'a> Loader<'a> {
    /// Reads the loader configuration of an image. `env_ld_library_path` is the value of
    /// `LD_LIBRARY_PATH` in the image config, if any.
    pub(crate) fn new(fs: &'a MergedFs, env_ld_library_path: Option<&str>) -> Self {
        let ld_library_path = env_ld_library_path
            .map(|v| {
                v.split([':', ';'])
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let cache = fs.content("etc/ld.so.cache").map(parse_ld_cache);
        let conf_dirs = read_ld_conf(fs, "etc/ld.so.conf");
        Self {
            fs,
            ld_library_path,
            cache,
            conf_dirs,
        }
    }

    /// Checks one executable at `exe_path` with facts `elf`.
    pub(crate) fn check(&self, exe_path: &str, exe_node: &Node, elf: &ElfInfo) -> Runnability {
        let mut r = Runnability {
            loader: None,
            interpreter: None,
            resolved: Vec::new(),
            missing: Vec::new(),
            missing_versions: Vec::new(),
            problems: Vec::new(),
        };
        let Some(interp) = elf.interpreter.as_deref() else {
            return r;
        };
        if let Some(reason) = &elf.interpreter_problem {
            r.interpreter = Some(InterpreterStatus::Malformed {
                reason: reason.clone(),
            });
            return r;
        }
        if interp.is_empty() {
            // Not read (outside a sparse capture): no verdict.
            r.problems
                .push("PT_INTERP could not be read; the loader was not checked".into());
            return r;
        }
        let kind = if path::file_name(interp).starts_with("ld-musl-") {
            LoaderKind::Musl
        } else {
            LoaderKind::Glibc
        };
        r.loader = Some(kind);
        let mut interp_info: Option<(String, ElfInfo)> = None;
        r.interpreter = Some(match self.fs.lookup(interp) {
            Ok(Some((p, n))) if n.is_file() => {
                match n.facts.as_ref().and_then(|f| f.elf.as_ref()) {
                    Some(i) if same_arch(i, elf) => {
                        interp_info = Some((p.clone(), i.clone()));
                        InterpreterStatus::Found {
                            path: path::display(&p),
                        }
                    }
                    Some(i) => InterpreterStatus::Unusable {
                        path: path::display(&p),
                        reason: format!(
                            "built for {}, the binary for {}",
                            arch_name(i),
                            arch_name(elf)
                        ),
                    },
                    None => InterpreterStatus::Unusable {
                        path: path::display(&p),
                        reason: "not an ELF file".into(),
                    },
                }
            }
            Ok(Some((p, _))) => InterpreterStatus::Unusable {
                path: path::display(&p),
                reason: "not a regular file".into(),
            },
            Ok(None) => InterpreterStatus::Missing,
            Err(e) => InterpreterStatus::Unusable {
                path: interp.to_string(),
                reason: e.to_string(),
            },
        });
        let setuid = exe_node.mode & 0o6000 != 0;
        let interp_names: HashSet<String> = interp_info
            .iter()
            .flat_map(|(p, i)| {
                [
                    path::file_name(p).to_string(),
                    path::file_name(interp).to_string(),
                ]
                .into_iter()
                .chain(i.soname.clone())
            })
            .collect();

        // Breadth-first over the dependency tree; each object once.
        struct Obj {
            path: String,
            info: ElfInfo,
            /// RPATHs of the loaders above it, nearest first (glibc applies the chain).
            chain_rpaths: Vec<Rc<[String]>>,
            depth: usize,
        }
        let exe = path::display(exe_path);
        let mut queue: VecDeque<Obj> = VecDeque::new();
        queue.push_back(Obj {
            path: exe_path.to_string(),
            info: elf.clone(),
            chain_rpaths: Vec::new(),
            depth: 0,
        });
        let mut seen: HashSet<String> = HashSet::new();
        seen.insert(exe_path.to_string());
        let mut providers: BTreeMap<(String, String), (String, Vec<String>)> = BTreeMap::new();
        let mut lookups = 0usize;
        // What `r` already lists, for constant-time duplicate checks.
        let (mut resolved_names, mut resolved_pairs, mut missing_pairs, mut missing_versions) = (
            HashSet::new(),
            HashSet::new(),
            HashSet::new(),
            HashSet::new(),
        );
        'walk: while let Some(obj) = queue.pop_front() {
            if obj.depth > MAX_LIBRARY_DEPTH {
                r.problems.push(format!(
                    "dependency tree deeper than {MAX_LIBRARY_DEPTH} levels"
                ));
                break;
            }
            let origin = path::parent(&obj.path).to_string();
            let own_rpath: Rc<[String]> = obj
                .info
                .rpath
                .iter()
                .flat_map(|d| expand(d, &origin, elf))
                .collect();
            let own_runpath: Vec<String> = obj
                .info
                .runpath
                .iter()
                .flat_map(|d| expand(d, &origin, elf))
                .collect();
            for name in &obj.info.needed {
                if interp_names.contains(name) || (kind == LoaderKind::Musl && musl_reserved(name))
                {
                    providers.insert(
                        (obj.path.clone(), name.clone()),
                        (
                            "(loader)".into(),
                            interp_info
                                .as_ref()
                                .map(|(_, i)| i.version_defs.clone())
                                .unwrap_or_default(),
                        ),
                    );
                    if resolved_names.insert(name.clone()) {
                        resolved_pairs.insert((name.clone(), "(loader)".to_string()));
                        r.resolved.push(ResolvedLibrary {
                            name: name.clone(),
                            path: "(loader)".into(),
                        });
                    }
                    continue;
                }
                let mut searched = Searched::default();
                let found = if name.contains('/') {
                    self.candidate(&path::join_clamped("", name), elf)
                } else {
                    let mut dirs: Vec<String> = Vec::new();
                    match kind {
                        LoaderKind::Glibc => {
                            if obj.info.runpath.is_empty() {
                                dirs.extend(own_rpath.iter().cloned());
                                for rp in &obj.chain_rpaths {
                                    dirs.extend(rp.iter().cloned());
                                }
                            }
                            if !setuid {
                                dirs.extend(self.ld_library_path.iter().cloned());
                            }
                            dirs.extend(own_runpath.iter().cloned());
                        }
                        LoaderKind::Musl => {
                            if !setuid {
                                dirs.extend(self.ld_library_path.iter().cloned());
                            }
                            let own: &[String] = if obj.info.runpath.is_empty() {
                                &own_rpath
                            } else {
                                &own_runpath
                            };
                            dirs.extend(own.iter().cloned());
                            for rp in &obj.chain_rpaths {
                                dirs.extend(rp.iter().cloned());
                            }
                        }
                    }
                    // Every directory tried below counts against the work bound (32: the
                    // default, multiarch and glibc-hwcaps directories, generously).
                    lookups += dirs.len()
                        + self
                            .cache
                            .as_ref()
                            .and_then(|c| c.get(name))
                            .map_or(0, Vec::len)
                        + self.conf_dirs.len()
                        + 32;
                    if lookups > MAX_LOADER_LOOKUPS {
                        r.problems.push(format!("library search stopped after {MAX_LOADER_LOOKUPS} lookups (forged RPATH or DT_NEEDED lists?)"));
                        break 'walk;
                    }
                    let mut hit = None;
                    for d in &dirs {
                        searched.push(|| path::display(d.trim_start_matches('/')));
                        if let Some(c) =
                            self.candidate(&path::child(d.trim_start_matches('/'), name), elf)
                        {
                            hit = Some(c);
                            break;
                        }
                    }
                    if hit.is_none() && kind == LoaderKind::Glibc {
                        if let Some(cache) = &self.cache {
                            searched.push(|| "/etc/ld.so.cache".into());
                            for p in cache.get(name).into_iter().flatten() {
                                if let Some(c) = self.candidate(p.trim_start_matches('/'), elf) {
                                    hit = Some(c);
                                    break;
                                }
                            }
                        }
                    }
                    if hit.is_none() {
                        for d in self.system_dirs(kind, interp, elf) {
                            if !d.contains("/glibc-hwcaps/") {
                                searched.push(|| path::display(&d));
                            }
                            if let Some(c) = self.candidate(&path::child(&d, name), elf) {
                                hit = Some(c);
                                break;
                            }
                        }
                    }
                    hit
                };
                match found {
                    Some((p, info)) => {
                        providers.insert(
                            (obj.path.clone(), name.clone()),
                            (path::display(&p), info.version_defs.clone()),
                        );
                        if resolved_pairs.insert((name.clone(), path::display(&p))) {
                            resolved_names.insert(name.clone());
                            r.resolved.push(ResolvedLibrary {
                                name: name.clone(),
                                path: path::display(&p),
                            });
                        }
                        if seen.insert(p.clone()) {
                            let mut chain = vec![Rc::clone(&own_rpath)];
                            chain.extend(obj.chain_rpaths.iter().cloned());
                            queue.push_back(Obj {
                                path: p,
                                info,
                                chain_rpaths: chain,
                                depth: obj.depth + 1,
                            });
                        }
                    }
                    None => {
                        let hint = (kind == LoaderKind::Glibc && self.cache.is_none())
                            .then(|| {
                                self.conf_dirs.iter().find(|d| self.candidate(&path::child(d, name), elf).is_some()).map(|d| {
                                    format!(
                                        "{name} is in {} (listed in /etc/ld.so.conf), but the image has no /etc/ld.so.cache: run ldconfig in the image build",
                                        path::display(d)
                                    )
                                })
                            })
                            .flatten();
                        let needed_by = path::display(&obj.path);
                        if missing_pairs.insert((name.clone(), needed_by.clone())) {
                            r.missing.push(MissingLibrary {
                                name: name.clone(),
                                needed_by,
                                searched: searched.finish(),
                                hint,
                            });
                        }
                    }
                }
            }
            // Symbol versions this object needs from each library it resolved.
            for need in &obj.info.version_needs {
                let Some((provider, defs)) = providers.get(&(obj.path.clone(), need.file.clone()))
                else {
                    continue;
                };
                if provider == "(loader)" && interp_info.is_none() {
                    continue;
                }
                for v in &need.versions {
                    if !defs.iter().any(|d| d == v) {
                        let needed_by = path::display(&obj.path);
                        let mv = MissingVersion {
                            version: v.clone(),
                            library: need.file.clone(),
                            provider: provider.clone(),
                            needed_by,
                        };
                        if missing_versions.insert(mv.clone()) {
                            r.missing_versions.push(mv);
                        }
                    }
                }
            }
        }
        let _ = exe;
        r
    }

    /// A file at `p` (following symlinks) that is an ELF file of the binary's class and
    /// machine.
    fn candidate(&self, p: &str, want: &ElfInfo) -> Option<(String, ElfInfo)> {
        let (resolved, node) = self.fs.lookup(p).ok()??;
        if !node.is_file() {
            return None;
        }
        let info = node.facts.as_ref()?.elf.as_ref()?;
        same_arch(info, want).then(|| (resolved, info.clone()))
    }

    fn system_dirs(&self, kind: LoaderKind, interp: &str, elf: &ElfInfo) -> Vec<String> {
        match kind {
            LoaderKind::Musl => {
                let arch = path::file_name(interp)
                    .trim_start_matches("ld-musl-")
                    .trim_end_matches(".so.1");
                let file = format!("etc/ld-musl-{arch}.path");
                match self.fs.content(&file) {
                    Some(c) => String::from_utf8_lossy(c)
                        .split([':', '\n'])
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| s.trim_start_matches('/').to_string())
                        .collect(),
                    None => vec!["lib".into(), "usr/local/lib".into(), "usr/lib".into()],
                }
            }
            LoaderKind::Glibc => {
                let mut base: Vec<String> = Vec::new();
                for t in triplets(elf) {
                    base.push(format!("lib/{t}"));
                    base.push(format!("usr/lib/{t}"));
                }
                if elf.class == ElfClass::Elf64 {
                    base.push("lib64".into());
                    base.push("usr/lib64".into());
                }
                base.push("lib".into());
                base.push("usr/lib".into());
                let hw = hwcaps(elf);
                let mut out = Vec::new();
                for b in base {
                    for h in hw {
                        out.push(format!("{b}/glibc-hwcaps/{h}"));
                    }
                    out.push(b);
                }
                out
            }
        }
    }
}

/// The platform an ELF file is built for when it is not the image's, e.g. `freebsd/386`
/// in a `linux/amd64` image: its OS ABI names another OS (`EI_OSABI`; System V, 0, names
/// none), or its machine is not the image's architecture. Such a file is foreign: it is
/// listed, not checked for whether it can start. Without an image platform (a root
/// filesystem) only the OS is compared, with `linux`.
pub(crate) fn foreign(elf: &ElfInfo, image: Option<&Platform>) -> Option<String> {
    let image_os = image.map(|p| p.os.as_str()).filter(|o| !o.is_empty());
    let os = elf.os();
    let other_os = os.filter(|o| *o != image_os.unwrap_or("linux"));
    let image_arch = image
        .map(|p| p.architecture.as_str())
        .filter(|a| KNOWN_ARCHES.contains(a));
    let other_arch = image_arch.is_some_and(|a| elf.architecture != Some(a));
    if other_os.is_none() && !other_arch {
        return None;
    }
    let arch = arch_name(elf);
    Some(match os {
        Some(os) => format!("{os}/{arch}"),
        None => arch,
    })
}

/// Image architectures whose ELF machine imgaudit knows (`elf::machine_arch`): for others
/// no ELF file can be told foreign by its machine.
const KNOWN_ARCHES: &[&str] = &[
    "amd64", "386", "arm64", "arm", "ppc64le", "ppc64", "s390x", "riscv64", "loong64", "mips",
    "mipsle", "mips64", "mips64le",
];

fn same_arch(a: &ElfInfo, b: &ElfInfo) -> bool {
    a.class == b.class && a.machine == b.machine && a.big_endian == b.big_endian
}

fn arch_name(i: &ElfInfo) -> String {
    i.architecture
        .map_or_else(|| format!("machine {}", i.machine), str::to_string)
}

/// Names musl's loader satisfies itself (`ldso/dynlink.c`, `load_library`).
fn musl_reserved(name: &str) -> bool {
    [
        "libc.so",
        "libdl.so",
        "libm.so",
        "libpthread.so",
        "librt.so",
        "libutil.so",
        "libxnet.so",
    ]
    .iter()
    .any(|p| {
        name == *p
            || name
                .strip_prefix(p)
                .is_some_and(|rest| rest.starts_with('.'))
    })
}

fn triplets(elf: &ElfInfo) -> &'static [&'static str] {
    match (elf.machine, elf.class, elf.big_endian) {
        (62, ElfClass::Elf64, _) => &["x86_64-linux-gnu"],
        (3, _, _) => &["i386-linux-gnu"],
        (183, _, _) => &["aarch64-linux-gnu"],
        (40, _, _) => &["arm-linux-gnueabihf", "arm-linux-gnueabi"],
        (21, ElfClass::Elf64, false) => &["powerpc64le-linux-gnu"],
        (21, ElfClass::Elf64, true) => &["powerpc64-linux-gnu"],
        (22, _, _) => &["s390x-linux-gnu"],
        (243, _, _) => &["riscv64-linux-gnu"],
        (258, _, _) => &["loongarch64-linux-gnu"],
        _ => &[],
    }
}

fn hwcaps(elf: &ElfInfo) -> &'static [&'static str] {
    match elf.machine {
        62 => &["x86-64-v4", "x86-64-v3", "x86-64-v2"],
        21 => &["power10", "power9"],
        22 => &["z16", "z15", "z14", "z13"],
        _ => &[],
    }
}

/// Expands `$ORIGIN`, `$LIB` and `$PLATFORM` in one RPATH/RUNPATH entry; `origin` is the
/// directory of the object that carries it. Returns root-relative directories.
fn expand(entry: &str, origin: &str, elf: &ElfInfo) -> Vec<String> {
    if entry.is_empty() {
        // An empty entry means the working directory; unknowable here.
        return Vec::new();
    }
    let platform = match elf.machine {
        62 => "x86_64",
        183 => "aarch64",
        3 => "i686",
        _ => "",
    };
    let libs: Vec<String> = if entry.contains("$LIB") || entry.contains("${LIB}") {
        let mut v: Vec<String> = triplets(elf).iter().map(|t| format!("lib/{t}")).collect();
        v.push(if elf.class == ElfClass::Elf64 {
            "lib64".into()
        } else {
            "lib".into()
        });
        v
    } else {
        vec![String::new()]
    };
    libs.iter()
        .map(|lib| {
            let e = entry
                .replace("${ORIGIN}", &format!("/{origin}"))
                .replace("$ORIGIN", &format!("/{origin}"))
                .replace("${LIB}", lib)
                .replace("$LIB", lib)
                .replace("${PLATFORM}", platform)
                .replace("$PLATFORM", platform);
            path::join_clamped("", &e)
        })
        .collect()
}

/// The directories a library search tried, in order: the first [`MAX_SEARCHED_LISTED`]
/// by name, the rest counted.
#[derive(Default)]
struct Searched {
    listed: Vec<String>,
    more: usize,
}

impl Searched {
    fn push(&mut self, dir: impl FnOnce() -> String) {
        if self.listed.len() < MAX_SEARCHED_LISTED {
            self.listed.push(dir());
        } else {
            self.more += 1;
        }
    }

    fn finish(mut self) -> Vec<String> {
        if self.more > 0 {
            self.listed.push(format!("… and {} more", self.more));
        }
        self.listed
    }
}

/// Directories from `ld.so.conf` and its `include` globs (only `dir/*.conf` style globs).
/// Each file is read once, and [`MAX_LD_CONF_INCLUDES`] bounds what a forged configuration
/// can make the loader check cost.
fn read_ld_conf(fs: &MergedFs, file: &str) -> Vec<String> {
    let mut walk = ConfWalk::default();
    walk.file(fs, file, 0);
    walk.dirs
}

#[derive(Default)]
struct ConfWalk {
    seen: HashSet<String>,
    includes: usize,
    dirs: Vec<String>,
}

impl ConfWalk {
    fn file(&mut self, fs: &MergedFs, file: &str, depth: usize) {
        if depth > 4 || !self.seen.insert(file.to_string()) {
            return;
        }
        // Included files are named by the image: they may lie outside `READS`.
        let content = if depth == 0 {
            fs.content(file)
        } else {
            fs.content_named_by_image(file)
        };
        let Some(c) = content else { return };
        for line in String::from_utf8_lossy(c).lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            if let Some(pat) = line.strip_prefix("include").map(str::trim) {
                self.includes += 1;
                if self.includes > MAX_LD_CONF_INCLUDES {
                    return;
                }
                let pat = pat.trim_start_matches('/');
                let (dir, glob) = (path::parent(pat), path::file_name(pat));
                let suffix = glob.strip_prefix('*').unwrap_or(glob);
                let Ok(Some((rdir, _))) = fs.lookup(dir) else {
                    continue;
                };
                let files: Vec<String> = fs
                    .descendants(&rdir)
                    .filter(|(k, _)| path::parent(k) == rdir && k.ends_with(suffix))
                    .map(|(k, _)| k.to_string())
                    .collect();
                for f in files {
                    self.file(fs, &f, depth + 1);
                }
            } else {
                for d in line.split([':', ',', ' ', '\t']).filter(|s| !s.is_empty()) {
                    if self.dirs.len() >= MAX_LD_CONF_DIRS {
                        return;
                    }
                    self.dirs.push(d.trim_start_matches('/').to_string());
                }
            }
        }
    }
}

/// Parses `/etc/ld.so.cache` (new format `glibc-ld.so.cache1.1`, standalone or after the
/// old one) into soname → paths. A damaged cache yields what could be read, within the
/// bounds of [`MAX_LD_CACHE_ENTRIES`].
pub(crate) fn parse_ld_cache(b: &[u8]) -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    let magic = b"glibc-ld.so.cache1.1";
    let Some(start) = memchr::memmem::find(b, magic) else {
        return out;
    };
    let hdr = &b[start..];
    if hdr.len() < 48 {
        return out;
    }
    // The cache is written in the host's byte order; flags byte 0 = unknown, 1 invalid,
    // 2 little, 3 big (glibc dl-cache.h).
    let big = hdr[28] == 3;
    let u32at = |o: usize| -> Option<u32> {
        let s = hdr.get(o..o + 4)?;
        Some(if big {
            u32::from_be_bytes(s.try_into().ok()?)
        } else {
            u32::from_le_bytes(s.try_into().ok()?)
        })
    };
    let Some(nlibs) = u32at(20) else { return out };
    let cstr_at = |o: u32| -> Option<String> {
        let s = hdr.get(o as usize..)?;
        let end = memchr::memchr(0, &s[..s.len().min(MAX_LD_CACHE_NAME_BYTES)])?;
        Some(String::from_utf8_lossy(&s[..end]).into_owned())
    };
    let mut kept = 0;
    for i in 0..(nlibs as usize).min(MAX_LD_CACHE_ENTRIES) {
        let e = 48 + i * 24;
        let (Some(key), Some(value)) = (u32at(e + 4), u32at(e + 8)) else {
            break;
        };
        if let (Some(k), Some(v)) = (cstr_at(key), cstr_at(value)) {
            kept += k.len() + v.len();
            if kept > MAX_LD_CACHE_KEPT_BYTES {
                break;
            }
            out.entry(k).or_default().push(v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::entry;

    #[test]
    fn musl_reserved_names() {
        assert!(musl_reserved("libc.so"));
        assert!(musl_reserved("libpthread.so.0"));
        assert!(musl_reserved("libdl.so.2"));
        assert!(!musl_reserved("libcrypto.so.3"));
        assert!(!musl_reserved("libcx.so"));
    }

    #[test]
    fn real_ld_cache_parses() {
        // The build machine's own cache is a real-world sample of the format.
        if let Ok(b) = std::fs::read("/etc/ld.so.cache") {
            let m = parse_ld_cache(&b);
            assert!(
                m.contains_key("libc.so.6"),
                "libc.so.6 missing from parsed cache"
            );
        }
        assert!(parse_ld_cache(b"garbage").is_empty());
        let mut trunc = b"glibc-ld.so.cache1.1".to_vec();
        trunc.extend_from_slice(&[0xff; 40]);
        let _ = parse_ld_cache(&trunc);
    }

    fn text(p: &str, content: &str) -> crate::layer::Entry {
        let facts = crate::inspect::FileFacts {
            content: Some(content.as_bytes().into()),
            ..Default::default()
        };
        crate::layer::Entry {
            facts: Some(std::sync::Arc::new(facts)),
            ..entry(p, crate::layer::EntryKind::File, content.len() as u64)
        }
    }

    #[test]
    fn ld_conf_includes_are_read_once_and_bounded() {
        let mut fs = MergedFs::new(crate::audit::content_plan());
        // A real Debian layout, plus a directory listed twice.
        fs.apply(
            0,
            &[
                text(
                    "etc/ld.so.conf",
                    "include /etc/ld.so.conf.d/*.conf\n/opt/lib # local\n",
                ),
                text(
                    "etc/ld.so.conf.d/libc.conf",
                    "# libc default configuration\n/usr/local/lib\n",
                ),
                text(
                    "etc/ld.so.conf.d/x86_64-linux-gnu.conf",
                    "/usr/local/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu\n",
                ),
                text("etc/ld.so.conf.d/ignored.txt", "/not/read\n"),
            ],
        );
        assert_eq!(
            read_ld_conf(&fs, "etc/ld.so.conf"),
            [
                "usr/local/lib",
                "usr/local/lib/x86_64-linux-gnu",
                "lib/x86_64-linux-gnu",
                "opt/lib"
            ]
        );

        // Forged: 60 files that each include all 60 again (60^5 reads without the seen set)
        // and carry thousands of directories.
        let dirs: String = (0..5000).map(|i| format!("/d{i}\n")).collect();
        let mut entries = vec![text("etc/ld.so.conf", "include /etc/ld.so.conf.d/*.conf\n")];
        for i in 0..60 {
            entries.push(text(
                &format!("etc/ld.so.conf.d/{i}.conf"),
                &format!("include /etc/ld.so.conf.d/*.conf\n{dirs}"),
            ));
        }
        let mut fs = MergedFs::new(crate::audit::content_plan());
        fs.apply(0, &entries);
        let got = read_ld_conf(&fs, "etc/ld.so.conf");
        assert_eq!(got.len(), MAX_LD_CONF_DIRS);
        assert_eq!(got[..2], ["d0", "d1"]);

        // Forged: more include lines than the bound; what follows them is not read.
        let includes: String = (0..MAX_LD_CONF_INCLUDES + 10)
            .map(|i| format!("include /nowhere{i}/*.conf\n"))
            .collect();
        let mut fs = MergedFs::new(crate::audit::content_plan());
        fs.apply(
            0,
            &[text(
                "etc/ld.so.conf",
                &format!("/first\n{includes}/after\n"),
            )],
        );
        assert_eq!(read_ld_conf(&fs, "etc/ld.so.conf"), ["first"]);
    }

    fn elf_entry(p: &str, info: ElfInfo) -> crate::layer::Entry {
        let facts = crate::inspect::FileFacts {
            elf: Some(info),
            ..Default::default()
        };
        crate::layer::Entry {
            mode: 0o755,
            facts: Some(std::sync::Arc::new(facts)),
            ..entry(p, crate::layer::EntryKind::File, 0)
        }
    }

    /// A chain of libraries, each needing a thousand missing names and listing 256
    /// distinct RPATH directories: glibc searches the whole RPATH chain for every name, so
    /// the naive walk would make ~5 × 10^8 lookups. It stops at the bound, says so, and
    /// lists a bounded part of each search.
    #[test]
    fn forged_dependency_lists_stay_bounded() {
        // Facts of a real ELF file (this test binary), with forged dynamic lists.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let limits = crate::limits::Limits::default();
        let real = crate::inspect::inspect_reader(
            "/t",
            me.len() as u64,
            &mut &me[..],
            &limits,
            crate::audit::content_plan(),
            1 << 18,
        )
        .unwrap()
        .unwrap()
        .elf
        .unwrap();
        let forged = |i: usize| {
            let mut e = real.clone();
            e.interpreter = Some("/lib64/ld-linux-x86-64.so.2".into());
            e.needed = std::iter::once(format!("L{}.so", i + 1))
                .chain((0..1000).map(|j| format!("missing{j}.so")))
                .collect();
            e.rpath = (0..256).map(|k| format!("/r{i}/{k}")).collect();
            e.runpath.clear();
            e
        };
        let mut entries: Vec<_> = (1..64)
            .map(|i| elf_entry(&format!("usr/lib/L{i}.so"), forged(i)))
            .collect();
        entries.push(elf_entry("app", forged(0)));
        let mut fs = MergedFs::new(crate::audit::content_plan());
        fs.apply(0, &entries);
        let (node, info) = (fs.get("app").unwrap(), forged(0));
        let r = Loader::new(&fs, None).check("app", node, &info);
        assert!(
            r.problems
                .iter()
                .any(|p| p.contains("library search stopped")),
            "{:?}",
            r.problems
        );
        assert!(r.resolved.iter().any(|l| l.name == "L1.so"));
        assert!(!r.missing.is_empty());
        assert!(r
            .missing
            .iter()
            .all(|m| m.searched.len() <= MAX_SEARCHED_LISTED + 1
                && m.searched.last().unwrap().starts_with("… and ")));
    }

    /// musl reads its search path from `/etc/ld-musl-<arch>.path` (the file's content is
    /// declared in `READS`, so it is kept and this test reads it).
    #[test]
    fn musl_searches_its_path_file() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let mut real = crate::inspect::inspect_reader(
            "/t",
            me.len() as u64,
            &mut &me[..],
            &crate::limits::Limits::default(),
            crate::audit::content_plan(),
            1 << 18,
        )
        .unwrap()
        .unwrap()
        .elf
        .unwrap();
        real.version_needs.clear();
        real.needed.clear();
        real.rpath.clear();
        real.runpath.clear();
        let mut app = real.clone();
        app.interpreter = Some("/lib/ld-musl-x86_64.so.1".into());
        app.needed = vec!["libz.so.1".into()];
        let entries = [
            elf_entry("lib/ld-musl-x86_64.so.1", real.clone()),
            elf_entry("opt/zlib/libz.so.1", real.clone()),
            elf_entry("usr/lib/libz.so.1", real),
            text("etc/ld-musl-x86_64.path", "/opt/zlib\n/lib\n"),
            elf_entry("app", app.clone()),
        ];
        let mut fs = MergedFs::new(crate::audit::content_plan());
        fs.apply(0, &entries);
        let r = Loader::new(&fs, None).check("app", fs.get("app").unwrap(), &app);
        assert_eq!(r.loader, Some(LoaderKind::Musl));
        let z = r.resolved.iter().find(|l| l.name == "libz.so.1");
        assert_eq!(
            z.map(|l| l.path.as_str()),
            Some("/opt/zlib/libz.so.1"),
            "{r:?}"
        );
    }

    /// A forged cache: the most entries the file can hold, every key and value pointing at
    /// the same long string (terminated far away, or not at all). Names longer than
    /// `PATH_MAX` are not names, and what is kept stays bounded.
    #[test]
    fn forged_ld_cache_is_bounded() {
        for terminated in [true, false] {
            let len = 8 << 20;
            let mut b = vec![0u8; len];
            b[..20].copy_from_slice(b"glibc-ld.so.cache1.1");
            b[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
            b[28] = 2;
            let text = 48 + 24 * 100_000;
            for i in 0..100_000 {
                let e = 48 + i * 24;
                b[e + 4..e + 8]
                    .copy_from_slice(&(text as u32 - (i % 2) as u32 * 3000).to_le_bytes());
                b[e + 8..e + 12].copy_from_slice(&(text as u32).to_le_bytes());
            }
            b[text - 3000..].fill(b'a');
            if terminated {
                b[text + 1000] = 0;
            }
            let m = parse_ld_cache(&b);
            let kept: usize = m
                .iter()
                .map(|(k, v)| k.len() + v.iter().map(String::len).sum::<usize>())
                .sum();
            assert!(kept <= MAX_LD_CACHE_KEPT_BYTES, "{kept}");
            assert!(m.values().map(Vec::len).sum::<usize>() <= MAX_LD_CACHE_ENTRIES);
            assert_eq!(
                m.is_empty(),
                !terminated,
                "short names are read, unterminated ones are not"
            );
        }
        // Short names: the entry count is what stops the reader.
        let n = 100_000;
        let mut b = vec![0u8; 48 + 24 * n + 4];
        b[..20].copy_from_slice(b"glibc-ld.so.cache1.1");
        b[20..24].copy_from_slice(&(n as u32).to_le_bytes());
        b[28] = 2;
        let name = (48 + 24 * n) as u32;
        b[name as usize..name as usize + 2].copy_from_slice(b"a\0");
        for i in 0..n {
            let e = 48 + i * 24;
            b[e + 4..e + 8].copy_from_slice(&name.to_le_bytes());
            b[e + 8..e + 12].copy_from_slice(&name.to_le_bytes());
        }
        assert_eq!(parse_ld_cache(&b)["a"].len(), MAX_LD_CACHE_ENTRIES);
    }
}
