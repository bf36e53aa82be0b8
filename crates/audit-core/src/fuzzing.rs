//! Entry points for the cargo-fuzz targets in `fuzz/` (feature `fuzzing`; not a public API).
//!
//! Each function takes the fuzzer's bytes, runs one stage of the pipeline on them the way an
//! audit does, and panics only where the stage itself would (a panic is the bug the fuzzer
//! reports). The targets call nothing else of the crate, so the library's public surface can
//! change without breaking them. The unit tests at the end replay every input kept under
//! `testdata/fuzz-regressions/<target>/` through the same functions.

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::{Arc, OnceLock};

use crate::audit::{content_plan, Auditor};
use crate::digest::Digest;
use crate::error::SourceError;
use crate::finding::{Evidence, Finding, Severity};
use crate::fs::MergedFs;
use crate::inspect::{self, go};
use crate::layer::{Entry, EntryKind};
use crate::limits::Limits;
use crate::oci::{self, Descriptor, ImageConfig};
use crate::policy::PolicyFile;
use crate::report::{Cyclonedx, Format, Json, Markdown, Report, Sarif, Text};
use crate::source::{
    self, ArchiveFormat, BlobStore, ImageReference, PlatformChoice, RootObject, Source, TarArchive,
};
use crate::system::ldso;

/// Separates layers in a `layers` input, and files in an `ldso` input.
pub const SEPARATOR: &[u8] = b"\0--imgaudit-fuzz--\0";

/// Bounds for fuzzing: the defaults, with the expansion bounds lowered so that one input
/// costs milliseconds, and a small whole-capture bound so that the sparse ELF capture is
/// exercised by small files too.
fn limits() -> Limits {
    Limits {
        bomb_min_bytes: 8 << 20,
        max_layer_uncompressed: 64 << 20,
        ..Limits::default()
    }
}

/// Splits `data` at every [`SEPARATOR`], at most `max` parts (the last keeps the rest).
fn split(data: &[u8], max: usize) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while parts.len() + 1 < max {
        match memchr::memmem::find(rest, SEPARATOR) {
            Some(at) => {
                parts.push(&rest[..at]);
                rest = &rest[at + SEPARATOR.len()..];
            }
            None => break,
        }
    }
    parts.push(rest);
    parts
}

/// An error message is one printable line: no control or invisible characters, whatever
/// the input put into it (image-derived text is escaped by the error types).
fn one_line(e: &dyn std::fmt::Display) {
    let m = e.to_string();
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
    };
    assert!(!m.chars().any(hidden), "not one printable line: {m:?}");
}

/// An image in memory: layer blobs as given, a fixed config, a manifest naming them.
struct MemImage {
    root: Vec<u8>,
    blobs: HashMap<Digest, Vec<u8>>,
}

impl MemImage {
    fn new(layers: &[&[u8]]) -> Self {
        let mut blobs = HashMap::new();
        let descs: Vec<serde_json::Value> = layers
            .iter()
            .map(|b| {
                let d = Digest::sha256_of(b);
                blobs.insert(d.clone(), b.to_vec());
                serde_json::json!({
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": d.to_string(),
                    "size": b.len(),
                })
            })
            .collect();
        // What the rules read from a config: a dynamic entrypoint, a library path, a user.
        let config = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Entrypoint": ["/app"],
                "Cmd": ["--serve"],
                "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "LD_LIBRARY_PATH=/opt/lib"],
                "User": "1000",
            },
            "rootfs": {"type": "layers", "diff_ids": []},
            "history": [{"created_by": "COPY app /app # buildkit"}],
        });
        let config = serde_json::to_vec(&config).expect("serialisable");
        let cd = Digest::sha256_of(&config);
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": oci::media::OCI_MANIFEST,
            "config": {"mediaType": oci::media::OCI_CONFIG, "digest": cd.to_string(), "size": config.len()},
            "layers": descs,
        });
        blobs.insert(cd, config);
        Self {
            root: serde_json::to_vec(&manifest).expect("serialisable"),
            blobs,
        }
    }
}

impl BlobStore for MemImage {
    fn location(&self) -> String {
        "fuzz".into()
    }

    fn kind(&self) -> &'static str {
        "oci-layout"
    }

    fn root(&self) -> Result<RootObject, SourceError> {
        Ok(RootObject {
            bytes: self.root.clone(),
            media_type: Some(oci::media::OCI_MANIFEST.into()),
            digest: None,
            synthetic: false,
        })
    }

    fn open(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>, SourceError> {
        let b = self
            .blobs
            .get(&desc.digest)
            .ok_or_else(|| SourceError::MissingBlob {
                digest: desc.digest.clone(),
                location: self.location(),
            })?;
        Ok(Box::new(&b[..]))
    }
}

/// The layer pipeline and everything after it: `data` is one or more layer blobs (tar,
/// gzip or zstd, sniffed as in a real audit) separated by [`SEPARATOR`]; they are audited
/// as one image (digest-verified streaming, tar walk, file inspection, merge, loader check,
/// rules) and the reports rendered in every format. An error is one printable line.
pub fn layers(data: &[u8]) {
    let parts = split(data, 8);
    let src = Source::Blobs(Box::new(MemImage::new(&parts)));
    let auditor = Auditor::builder()
        .jobs(1)
        .limits(limits())
        .today("2026-01-01")
        .build();
    let reports = match auditor.audit(&src, "fuzz") {
        Ok(r) => r,
        Err(e) => return one_line(&e),
    };
    let formats: [&dyn Format; 5] = [
        &Text {
            color: true,
            all_binaries: true,
        },
        &Json { pretty: false },
        &Sarif,
        &Cyclonedx,
        &Markdown,
    ];
    for f in formats {
        f.write(&reports, &mut io::sink())
            .expect("rendering into a sink cannot fail");
    }
}

/// What a sparse capture may report for a file whose whole capture gave `whole`: the same
/// facts, except that a fact it could not capture (its bytes lay outside the bounded windows,
/// as a forged file can arrange) is left at its default, or for a list kept in part, *and
/// named* in `incomplete`. A sparse capture may know less than a whole one, and say so; it may
/// never know something else. Both captures can name the same fact incomplete and still differ
/// in how much of it they kept (a forged version table whose names lie partly outside the
/// capture): the sparse list must then be a subsequence of the whole one.
fn sparse_view(
    whole: &Option<inspect::FileFacts>,
    sparse: &Option<inspect::FileFacts>,
) -> Option<inspect::FileFacts> {
    let (Some(w), Some(s)) = (whole, sparse) else {
        return whole.clone();
    };
    let (Some(we), Some(se)) = (&w.elf, &s.elf) else {
        return whole.clone();
    };
    let mut view = w.clone();
    if se.incomplete.iter().any(|m| m == "program headers") {
        // Without its program headers (a table larger than the capture budget), a capture
        // knows the ELF header and nothing that segments locate: only the header must agree.
        let mut e = se.clone();
        e.class = we.class;
        e.big_endian = we.big_endian;
        e.machine = we.machine;
        e.architecture = we.architecture;
        e.os_abi = we.os_abi;
        e.e_type = we.e_type;
        view.elf = Some(e);
        return Some(view);
    }
    let mut e = we.clone();
    for missing in &se.incomplete {
        // Each item names the facts it stands for (see `incomplete.push` in inspect/elf).
        match missing.as_str() {
            "section names" if se.debug == Default::default() => e.debug = Default::default(),
            "interpreter" => {
                e.interpreter = se.interpreter.clone();
                e.interpreter_problem = se.interpreter_problem.clone();
            }
            "symbol version requirements"
                if is_subsequence(&se.version_needs, &we.version_needs, |s, w| {
                    s.file == w.file && is_subsequence(&s.versions, &w.versions, |a, b| a == b)
                }) =>
            {
                e.version_needs = se.version_needs.clone()
            }
            "symbol version definitions"
                if is_subsequence(&se.version_defs, &we.version_defs, |a, b| a == b) =>
            {
                e.version_defs = se.version_defs.clone()
            }
            "go build info" => e.go = se.go.clone(),
            "go packages used" => {
                if let (Some(w), Some(s)) = (&mut e.go, &se.go) {
                    w.uses = s.uses;
                }
            }
            "go pclntab" => match (&mut e.go, &se.go) {
                (Some(w), Some(s)) => {
                    w.pclntab = s.pclntab;
                    w.uses = s.uses;
                }
                // The table was all that said Go.
                (_, None) => e.go = None,
                (None, Some(_)) => {}
            },
            // Anything else must not differ: the assertion shows it.
            _ => {}
        }
    }
    e.incomplete = se.incomplete.clone();
    view.elf = Some(e);
    Some(view)
}

/// Whether `part` is `all` with some elements left out (order kept), elements compared by `fits`.
fn is_subsequence<T>(part: &[T], all: &[T], fits: impl Fn(&T, &T) -> bool) -> bool {
    let mut rest = all.iter();
    part.iter().all(|p| rest.any(|a| fits(p, a)))
}

/// One file as the layer pipeline inspects it (ELF and Go build info, scripts, captured
/// configuration, credentials), read in two chunk sizes and with the sparse ELF capture
/// forced: the facts must not depend on either. Input that is not ELF is also parsed as
/// Go module info text, which must survive a render/parse round trip.
pub fn file(data: &[u8]) {
    let size = data.len() as u64;
    let mut l = limits();
    let read = |path: &str, chunk: usize, l: &Limits| {
        inspect::inspect_reader(path, size, &mut &data[..], l, content_plan(), chunk)
            .expect("reading from memory cannot fail")
    };
    let whole = read("usr/bin/app", 1 << 18, &l);
    // Two more passes cost time; keep them to inputs the size of the small seeds.
    if data.len() <= 256 << 10 {
        let chunk = 64 + usize::from(data.last().copied().unwrap_or(0));
        assert_eq!(
            whole,
            read("usr/bin/app", chunk, &l),
            "facts depend on the read size"
        );
        if whole.as_ref().is_some_and(|f| f.elf.is_some()) {
            l.elf_full_capture_max = 0;
            let sparse = read("usr/bin/app", chunk, &l);
            if sparse != whole {
                assert_eq!(
                    sparse_view(&whole, &sparse),
                    sparse,
                    "sparse and whole capture disagree on a fact the sparse one claims to know"
                );
            }
        }
    }
    // A captured configuration file.
    read("etc/passwd", 1 << 18, &limits());
    if let Some(go) = whole
        .as_ref()
        .and_then(|f| f.elf.as_ref())
        .and_then(|e| e.go.as_ref())
    {
        if let Some(bi) = &go.build_info {
            bi.render_go_version_m("app");
        }
    }
    if !data.starts_with(b"\x7fELF") {
        modinfo(data);
    }
}

/// Go module info text: parse, render, parse again; the second render must equal the first
/// (Go's `String()` drops a replaced module's sum, so the first parse may lose that).
fn modinfo(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(go::strip_framing(data)) else {
        return;
    };
    let Ok(first) = go::parse_modinfo("go1.22.1", text) else {
        return;
    };
    let rendered = first.to_go_string();
    let second = go::parse_modinfo("go1.22.1", &rendered).expect("rendered module info parses");
    assert_eq!(
        rendered,
        second.to_go_string(),
        "module info does not round-trip"
    );
    go::GoVersion::parse(text);
}

fn text_entry(path: &str, content: &[u8]) -> Entry {
    Entry {
        facts: Some(Arc::new(inspect::FileFacts {
            content: Some(content.into()),
            ..Default::default()
        })),
        ..node(path, EntryKind::File, 0o644)
    }
}

fn node(path: &str, kind: EntryKind, mode: u32) -> Entry {
    Entry {
        path: path.into(),
        kind,
        mode,
        uid: 0,
        gid: 0,
        size: 0,
        capabilities: false,
        facts: None,
    }
}

fn elf_entry(path: &str, elf: inspect::ElfInfo) -> Entry {
    Entry {
        facts: Some(Arc::new(inspect::FileFacts {
            elf: Some(elf),
            ..Default::default()
        })),
        ..node(path, EntryKind::File, 0o755)
    }
}

/// Facts of a real x86-64 ELF file (this very executable), for the loader's test tree.
fn template_elf() -> &'static inspect::ElfInfo {
    static TEMPLATE: OnceLock<inspect::ElfInfo> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let me = std::fs::read(std::env::current_exe().expect("own path")).expect("own bytes");
        inspect::inspect_reader(
            "exe",
            me.len() as u64,
            &mut &me[..],
            &Limits::default(),
            content_plan(),
            1 << 18,
        )
        .expect("reading from memory cannot fail")
        .and_then(|f| f.elf)
        .expect("this executable is ELF")
    })
}

fn elf_info(
    interp: Option<&str>,
    soname: Option<&str>,
    needed: &[&str],
    versions: &[&str],
) -> inspect::ElfInfo {
    let strings = |v: &[&str]| v.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
    let mut e = template_elf().clone();
    e.interpreter = interp.map(str::to_string);
    e.linkage = if soname.is_some() {
        inspect::Linkage::SharedLibrary
    } else {
        inspect::Linkage::Dynamic
    };
    e.needed = strings(needed);
    e.rpath = Vec::new();
    e.runpath = vec!["$ORIGIN/../lib".into()];
    e.soname = soname.map(str::to_string);
    e.version_needs = vec![inspect::elf::VersionNeed {
        file: "libc.so.6".into(),
        versions: vec!["GLIBC_2.34".into()],
    }];
    e.version_defs = strings(versions);
    e
}

/// The loader files: `data` is `/etc/ld.so.cache`, `/etc/ld.so.conf`, then files of
/// `/etc/ld.so.conf.d/` and `/etc/ld-musl-x86_64.path`, separated by [`SEPARATOR`]. They
/// are merged with a small glibc and musl tree, and two executables are checked the way
/// the auditor proves they can start.
pub fn ldso(data: &[u8]) {
    let parts = split(data, 6);
    ldso::parse_ld_cache(parts[0]);
    let mut entries = vec![text_entry("etc/ld.so.cache", parts[0])];
    let names = [
        "etc/ld.so.conf",
        "etc/ld.so.conf.d/libc.conf",
        "etc/ld.so.conf.d/x86_64-linux-gnu.conf",
        "etc/ld-musl-x86_64.path",
    ];
    for (name, part) in names.iter().zip(&parts[1..]) {
        entries.push(text_entry(name, part));
    }
    let glibc_interp = "/lib64/ld-linux-x86-64.so.2";
    let musl_interp = "/lib/ld-musl-x86_64.so.1";
    entries.extend([
        node("lib64", EntryKind::Symlink("usr/lib64".into()), 0o777),
        elf_entry(
            "usr/lib64/ld-linux-x86-64.so.2",
            elf_info(None, Some("ld-linux-x86-64.so.2"), &[], &[]),
        ),
        elf_entry(
            "lib/x86_64-linux-gnu/libc.so.6",
            elf_info(None, Some("libc.so.6"), &[], &["GLIBC_2.2.5", "GLIBC_2.34"]),
        ),
        elf_entry(
            "usr/local/lib/libssl.so.3",
            elf_info(None, Some("libssl.so.3"), &["libcrypto.so.3"], &[]),
        ),
        elf_entry(
            "opt/vendor/lib/libcrypto.so.3",
            elf_info(None, Some("libcrypto.so.3"), &["libc.so.6"], &[]),
        ),
        elf_entry(
            "lib/ld-musl-x86_64.so.1",
            elf_info(None, Some("libc.musl-x86_64.so.1"), &[], &[]),
        ),
        elf_entry(
            "usr/lib/libz.so.1",
            elf_info(None, Some("libz.so.1"), &["libc.so"], &[]),
        ),
        node(
            "usr/lib/libz.so",
            EntryKind::Symlink("libz.so.1".into()),
            0o777,
        ),
    ]);
    let glibc_app = elf_info(
        Some(glibc_interp),
        None,
        &["libc.so.6", "libssl.so.3", "libmissing.so.1"],
        &[],
    );
    let musl_app = elf_info(Some(musl_interp), None, &["libz.so.1", "libc.so"], &[]);
    entries.push(elf_entry("usr/bin/app", glibc_app.clone()));
    entries.push(elf_entry("usr/bin/musl-app", musl_app.clone()));
    let mut fs = MergedFs::new(content_plan());
    fs.apply(0, &entries);
    let loader = ldso::Loader::new(&fs, Some("/opt/lib:$ORIGIN"));
    for (path, info) in [("usr/bin/app", &glibc_app), ("usr/bin/musl-app", &musl_app)] {
        let node = fs.get(path).expect("the executable was just added");
        let r = loader.check(path, node, info);
        serde_json::to_string(&r).expect("serialisable");
    }
}

/// Image JSON documents as the sources read them: `data` as an OCI index or manifest
/// (with and without each declared media type) and as an image config; and, when it is a
/// JSON array or object, as the `manifest.json` of a `docker save` tarball (with a real
/// config and layer) and the `index.json` of an oci-archive, opened and resolved through
/// [`TarArchive`] with each kind of selector; its errors are one printable line.
pub fn image_json(data: &[u8]) {
    for declared in [
        None,
        Some(oci::media::OCI_INDEX),
        Some(oci::media::OCI_MANIFEST),
        Some(oci::media::DOCKER_LIST),
        Some(oci::media::DOCKER_MANIFEST),
        Some("application/vnd.example+json"),
    ] {
        match oci::parse_manifest_like(data, declared) {
            Ok(oci::ManifestKind::Index(i)) => {
                for d in &i.manifests {
                    if let Some(p) = &d.platform {
                        p.platform().to_string();
                    }
                }
            }
            Ok(oci::ManifestKind::Manifest(m)) => {
                oci::is_image_config(&m.config.media_type);
            }
            Err(_) => {}
        }
    }
    if let Ok(c) = serde_json::from_slice::<ImageConfig>(data) {
        let n = c.history.len();
        for h in &c.history {
            h.instruction();
            h.writes_files();
        }
        for layers in [0, 1, n, n + 3] {
            c.layer_steps(layers);
            c.layer_history(layers);
        }
        c.config.argv();
        c.config.env_var("PATH");
        crate::platform::Platform::new(&c.os, &c.architecture, c.variant.as_deref()).to_string();
    }
    match data.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => archive(&[("manifest.json", data)], Some(ArchiveFormat::Docker)),
        Some(b'{') => archive(
            &[
                ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#),
                ("index.json", data),
            ],
            Some(ArchiveFormat::Oci),
        ),
        _ => {}
    }
}

/// Writes `members` and a real config and layer (`config.json`, `layer.tar`, as `docker
/// save` names them) into a tarball, and audits its sources' view of it: opened with and
/// without the transport's format and with each kind of selector, then resolved.
fn archive(members: &[(&str, &[u8])], format: Option<ArchiveFormat>) {
    let layer = {
        let mut t = tar::Builder::new(Vec::new());
        append(&mut t, "etc/os-release", b"ID=debian\n");
        t.into_inner().expect("writing to memory cannot fail")
    };
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        Digest::sha256_of(&layer)
    );
    let mut t = tar::Builder::new(Vec::new());
    for (name, data) in members {
        append(&mut t, name, data);
    }
    append(&mut t, "config.json", config.as_bytes());
    append(&mut t, "layer.tar", &layer);
    let bytes = t.into_inner().expect("writing to memory cannot fail");
    let path = std::env::temp_dir().join(format!("imgaudit-fuzz-{}.tar", std::process::id()));
    std::fs::write(&path, bytes).expect("temporary file");
    let pinned = format!("app@sha256:{}", "0".repeat(64));
    for sel in [
        None,
        Some("@0"),
        Some("@1"),
        Some("app"),
        Some("docker.io/library/app:latest"),
        Some("localhost:5000/app:1"),
        Some(pinned.as_str()),
        Some("latest"),
    ] {
        for fmt in [None, format] {
            let resolved = TarArchive::open(&path, sel.map(str::to_string), fmt)
                .and_then(|store| source::resolve(store.as_ref(), &PlatformChoice::All, &limits()));
            if let Err(e) = resolved {
                one_line(&e);
            }
        }
    }
    std::fs::remove_file(&path).expect("temporary file");
}

fn append(t: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    t.append_data(&mut h, name, data)
        .expect("writing to memory cannot fail");
}

/// A policy file: parsed, validated, and applied to one finding of every rule; its
/// `[admission]` table judges a few namespaces and image references.
pub fn policy(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(file) = PolicyFile::parse(text) else {
        return;
    };
    let Ok(policy) = file.validate() else {
        return;
    };
    let findings: Vec<Finding> = crate::rules::RULES
        .iter()
        .enumerate()
        .map(|(i, r)| Finding {
            rule: r.id,
            name: r.name,
            severity: [Severity::Low, Severity::Medium, Severity::High][i % 3],
            message: "fuzz".into(),
            evidence: vec![Evidence {
                path: Some(format!("/usr/local/bin/tool{i}")),
                ..Default::default()
            }],
            remediation: r.remediation.into(),
        })
        .collect();
    for today in [None, Some("2026-01-01")] {
        let (kept, _) = policy.apply(findings.clone(), today);
        policy.verdict(&Report {
            findings: kept,
            ..Report::default()
        });
    }
    for name in policy.profiles.names() {
        if let Some(p) = policy.profiles.get(name) {
            p.provides_library("libc.so.6");
            p.owns("etc/passwd");
            p.nonroot();
        }
    }
    for ns in ["", "default", "kube-system", "team-a"] {
        policy.admission.for_namespace(ns);
    }
    let pinned = format!("localhost:5000/x/y@sha256:{}", "a".repeat(64));
    for r in ["alpine", "ghcr.io/acme/app:1", &pinned] {
        let r = ImageReference::parse(r).expect("a valid reference");
        policy.admission.registry_allowed(&r);
    }
}

/// A registry's `WWW-Authenticate` value as the registry client parses it: every challenge
/// (lower-case scheme and parameter names) must survive being written back, quoted, and
/// parsed again. The same bytes as a `Retry-After` value and as a distribution error body:
/// messages from a server stay one bounded line.
#[cfg(feature = "registry")]
pub fn auth_challenge(data: &[u8]) {
    use crate::source::registry::parse;
    let text = String::from_utf8_lossy(data);
    let challenges = parse::challenges(&text);
    let mut written = Vec::new();
    for c in &challenges {
        assert!(!c.scheme.is_empty() && c.scheme == c.scheme.to_ascii_lowercase());
        let mut w = c.scheme.clone();
        for (i, (k, v)) in c.params.iter().enumerate() {
            assert!(!k.is_empty() && *k == k.to_ascii_lowercase());
            assert_eq!(c.param(k), Some(v.as_str()));
            let quoted = v.replace('\\', "\\\\").replace('"', "\\\"");
            w.push_str(&format!(
                "{}{k}=\"{quoted}\"",
                if i == 0 { " " } else { ", " }
            ));
        }
        written.push(w);
    }
    let again = parse::challenges(&written.join(", "));
    assert_eq!(
        again, challenges,
        "challenges do not survive being written back"
    );
    let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
    parse::retry_after(&text, now);
    if let Some(s) = parse::error_summary(data) {
        assert!(!s.chars().any(char::is_control), "{s:?}");
        assert!(s.chars().count() <= 201, "{s:?}");
    }
}

/// A target: the fuzzer's bytes in, a panic for a bug.
pub type Target = fn(&[u8]);

/// Every target by its name in `fuzz/fuzz_targets/` and `testdata/fuzz-regressions/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("layers", layers),
    ("file", file),
    ("ldso", ldso),
    ("image_json", image_json),
    ("policy", policy),
    #[cfg(feature = "registry")]
    ("auth_challenge", auth_challenge),
];

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Replays every kept fuzzer input (crashes that were fixed, hangs that were bounded)
    /// through its target.
    #[test]
    fn fuzz_regressions_replay() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/fuzz-regressions");
        for &(name, run) in super::TARGETS {
            let Ok(dir) = std::fs::read_dir(root.join(name)) else {
                continue;
            };
            for f in dir {
                let p = f.unwrap().path();
                if p.extension().is_some_and(|e| e == "md") {
                    continue;
                }
                eprintln!("replaying {}", p.display());
                run(&std::fs::read(&p).unwrap());
            }
        }
    }
}
