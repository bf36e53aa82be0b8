//! CycloneDX 1.6 JSON: an SBOM of what the audit found.
//!
//! - `metadata.component`: the image (`type: container`, purl `pkg:oci/NAME@DIGEST`), with its
//!   platform and digests as properties; several images (an index audited with
//!   `--all-platforms`, or several arguments) become top-level `container` components instead,
//!   each with its own bom-ref prefix.
//! - The distribution from os-release as an `operating-system` component, and every installed
//!   OS package (dpkg `status`, distroless `status.d/*`, apk `installed`) as a library with
//!   purl `pkg:deb/debian/NAME@VERSION?arch=ARCH&distro=debian-12` or
//!   `pkg:apk/alpine/NAME@VERSION?arch=ARCH&distro=3.20.3`.
//! - Every Go binary with build info as an `application` (named by its path in the image; purl
//!   of its main module — for a `(devel)` build the pseudo-version of its `vcs.revision` and
//!   `vcs.time`, as syft derives it, else a purl without version), its modules as libraries
//!   `pkg:golang/PATH@VERSION` — replacements honoured: a module replaced by another module is
//!   listed as the replacement (the original in a property), one replaced by a local directory
//!   keeps its path with the directory as version property and no purl version — and the Go
//!   standard library as `pkg:golang/stdlib@vX.Y.Z`.
//! - `dependencies`: image → OS and binaries, OS → packages, binary → modules and stdlib.
//!   Build info lists a binary's modules flat, so modules depend on nothing known.
//!
//! Output is deterministic: no timestamp, and the serial number is derived from the images'
//! digests. Schema: `testdata/schemas/bom-1.6.schema.json` (checked in tests).

use std::collections::BTreeMap;
use std::io;

use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use super::{Format, Report};
use crate::inspect::go::Module;
use crate::system::pkgdb::OsPackage;

/// The CycloneDX format.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cyclonedx;

impl Format for Cyclonedx {
    fn id(&self) -> &'static str {
        "cyclonedx"
    }

    fn write(&self, reports: &[Report], out: &mut dyn io::Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, &document(reports)).map_err(io::Error::other)?;
        out.write_all(b"\n")
    }
}

/// Components and dependencies of one image.
struct Parts {
    image: Value,
    components: Vec<Value>,
    dependencies: Vec<Value>,
}

/// The BOM as a JSON value.
pub(super) fn document(reports: &[Report]) -> Value {
    let single = reports.len() == 1;
    let mut components = Vec::new();
    let mut dependencies = Vec::new();
    let mut metadata_component = None;
    let mut top = Vec::new();
    for (i, r) in reports.iter().enumerate() {
        let prefix = if single {
            String::new()
        } else {
            format!("image{i}/")
        };
        let p = image(r, &prefix);
        components.extend(p.components);
        dependencies.extend(p.dependencies);
        if single {
            metadata_component = Some(p.image);
        } else {
            top.push(p.image);
        }
    }
    top.extend(components);
    let mut metadata = json!({
        "tools": { "components": [{
            "type": "application",
            "name": "imgaudit",
            "version": env!("CARGO_PKG_VERSION"),
            "externalReferences": [{ "type": "website", "url": "https://github.com/imgaudit/imgaudit" }],
        }]},
    });
    if let Some(c) = metadata_component {
        metadata["component"] = c;
    }
    json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": serial(reports),
        "version": 1,
        "metadata": metadata,
        "components": top,
        "dependencies": dependencies,
    })
}

fn image(r: &Report, prefix: &str) -> Parts {
    let img = &r.image;
    let image_ref = format!("{prefix}image");
    let mut props = Vec::new();
    if let Some(p) = &img.platform {
        props.push(prop("imgaudit:platform", p));
    }
    if let Some(d) = &img.manifest_digest {
        props.push(prop("imgaudit:manifest_digest", &d.to_string()));
    }
    if let Some(d) = &img.config_digest {
        props.push(prop("imgaudit:config_digest", &d.to_string()));
    }
    if let Some(d) = &img.index_digest {
        props.push(prop("imgaudit:index_digest", &d.to_string()));
    }
    props.push(prop("imgaudit:source", &img.source));
    let name = image_name(&img.reference);
    let mut image = json!({
        "type": "container",
        "bom-ref": image_ref,
        "name": name,
        "properties": props,
    });
    if let Some(d) = &img.manifest_digest {
        image["version"] = json!(d.to_string());
        let arch = img.platform.as_deref().and_then(|p| p.split('/').nth(1));
        let mut purl = format!(
            "pkg:oci/{}@{}",
            enc(&name.to_ascii_lowercase()),
            enc(&d.to_string())
        );
        if let Some(a) = arch {
            purl.push_str(&format!("?arch={}", enc(a)));
        }
        image["purl"] = json!(purl);
    }

    let mut components = Vec::new();
    let mut dependencies = Vec::new();
    let mut image_deps = Vec::new();

    // The distribution and its packages.
    let distro_q = r.distro.as_ref().map(|d| match d.id.as_str() {
        "alpine" => d.version_id.clone(),
        id => format!("{id}-{}", d.version_id),
    });
    if r.distro.is_some() || !r.packages.is_empty() {
        let os_ref = format!("{prefix}os");
        let mut os = json!({ "type": "operating-system", "bom-ref": os_ref, "name": r.distro.as_ref().map_or("unknown", |d| d.id.as_str()) });
        if let Some(d) = &r.distro {
            if !d.version_id.is_empty() {
                os["version"] = json!(d.version_id);
            }
            if !d.pretty_name.is_empty() {
                os["description"] = json!(d.pretty_name);
            }
        }
        components.push(os);
        image_deps.push(os_ref.clone());
        let mut pkg_refs = Vec::new();
        for p in &r.packages {
            let purl = package_purl(
                p,
                r.distro.as_ref().map(|d| d.id.as_str()),
                distro_q.as_deref(),
            );
            let bref = format!("{prefix}{purl}");
            if pkg_refs.contains(&bref) {
                continue;
            }
            let mut c = json!({ "type": "library", "bom-ref": bref, "name": p.name, "version": p.version, "purl": purl });
            let mut props = vec![prop("imgaudit:package_db", &p.db)];
            if let Some(s) = &p.source {
                props.push(prop("imgaudit:source_package", s));
            }
            c["properties"] = json!(props);
            if let Some(l) = &p.license {
                c["licenses"] = json!([{ "license": { "name": l } }]);
            }
            components.push(c);
            dependencies.push(json!({ "ref": bref, "dependsOn": [] }));
            pkg_refs.push(bref);
        }
        dependencies.push(json!({ "ref": os_ref, "dependsOn": pkg_refs }));
    }

    // Go binaries and their modules (one component per distinct purl in the image).
    let mut modules: BTreeMap<String, Value> = BTreeMap::new();
    for b in &r.binaries {
        let Some(bi) = b.go.as_ref().and_then(|g| g.info.as_ref()) else {
            continue;
        };
        let bin_ref = format!("{prefix}file:{}", b.path);
        let mut c = json!({ "type": "application", "bom-ref": bin_ref, "name": b.path });
        let mut props = vec![
            prop("imgaudit:path", &b.path),
            prop("imgaudit:go_version", &bi.go_version),
        ];
        if let Some(p) = &bi.path {
            props.push(prop("imgaudit:go_main_package", p));
        }
        if let Some(m) = &bi.main {
            c["version"] = json!(m.version);
            props.push(prop("imgaudit:go_main_module", &m.path));
            if m.version != "(devel)" && !m.version.is_empty() {
                c["purl"] = json!(golang_purl(&m.path, Some(&m.version)));
            } else {
                // Built from a checkout (`(devel)`): the identity stays matchable.
                let derived = bi
                    .setting("vcs.revision")
                    .zip(bi.setting("vcs.time"))
                    .and_then(|(rev, time)| pseudo_version(&m.path, rev, time));
                match derived {
                    Some(v) => {
                        c["version"] = json!(v);
                        c["purl"] = json!(golang_purl(&m.path, Some(&v)));
                        props.push(prop("imgaudit:go_main_version", &m.version));
                        props.push(prop(
                            "imgaudit:go_version_derived_from",
                            "vcs.revision, vcs.time",
                        ));
                    }
                    None => c["purl"] = json!(golang_purl(&m.path, None)),
                }
            }
        }
        for key in [
            "GOOS",
            "GOARCH",
            "CGO_ENABLED",
            "-trimpath",
            "-buildmode",
            "vcs.revision",
            "vcs.modified",
        ] {
            if let Some(v) = bi.setting(key) {
                props.push(prop(&format!("imgaudit:go_build:{key}"), v));
            }
        }
        c["properties"] = json!(props);
        components.push(c);
        image_deps.push(bin_ref.clone());

        let mut deps: Vec<String> = Vec::new();
        for m in &bi.deps {
            let (purl, comp) = module_component(m);
            let mref = format!("{prefix}{purl}");
            modules.entry(mref.clone()).or_insert_with(|| {
                let mut comp = comp;
                comp["bom-ref"] = json!(mref);
                comp
            });
            if !deps.contains(&mref) {
                deps.push(mref);
            }
        }
        if let Some(v) = stdlib_version(&bi.go_version) {
            let purl = golang_purl("stdlib", Some(&v));
            let sref = format!("{prefix}{purl}");
            modules.entry(sref.clone()).or_insert_with(|| json!({ "type": "library", "bom-ref": sref, "name": "stdlib", "version": v, "purl": purl }));
            deps.push(sref);
        }
        dependencies.push(json!({ "ref": bin_ref, "dependsOn": deps }));
    }
    for (mref, c) in modules {
        components.push(c);
        dependencies.push(json!({ "ref": mref, "dependsOn": [] }));
    }
    dependencies.insert(0, json!({ "ref": image_ref, "dependsOn": image_deps }));
    Parts {
        image,
        components,
        dependencies,
    }
}

/// A module as a component, replacement honoured; returns its purl-like key too.
fn module_component(m: &Module) -> (String, Value) {
    match &m.replace {
        // A directory replacement has version `(devel)` (or none) and a path starting with
        // `./`, `../` or `/` (cmd/go's modfile.IsDirectoryPath).
        Some(r)
            if !r.version.is_empty()
                && r.version != "(devel)"
                && !r.path.starts_with(['.', '/']) =>
        {
            let purl = golang_purl(&r.path, Some(&r.version));
            let c = json!({
                "type": "library", "name": r.path, "version": r.version, "purl": purl,
                "properties": [prop("imgaudit:go_replaces", &format!("{}@{}", m.path, m.version))],
            });
            (purl, c)
        }
        Some(r) => {
            // Replaced by a local directory: no published version exists.
            let purl = golang_purl(&m.path, None);
            let c = json!({
                "type": "library", "name": m.path, "purl": purl,
                "properties": [prop("imgaudit:go_replaced_by_directory", &r.path), prop("imgaudit:go_required_version", &m.version)],
            });
            (format!("{purl}#local"), c)
        }
        None => {
            let purl = golang_purl(&m.path, Some(&m.version));
            let mut c =
                json!({ "type": "library", "name": m.path, "version": m.version, "purl": purl });
            if !m.sum.is_empty() {
                c["properties"] = json!([prop("imgaudit:go_sum", &m.sum)]);
            }
            (purl, c)
        }
    }
}

/// The pseudo-version (go.dev/ref/mod#pseudo-versions) of a main module built as `(devel)`
/// from the commit its build settings name: `vMAJOR.0.0-YYYYMMDDHHMMSS-REV12`, what syft
/// derives from `vcs.revision` and `vcs.time` (anchore/syft
/// `syft/pkg/cataloger/golang/parse_go_binary.go`) and what Go 1.24+ stamps into a build of
/// an untagged commit. MAJOR comes from a `/vN` (gopkg.in: `.vN`) path suffix as in Go —
/// syft writes v0 there, which is no valid version of a `/v2` module. `vcs.time` is what
/// cmd/go writes, RFC 3339 in UTC; a revision shorter than 12 characters or another time
/// form gives `None` (syft would use the zero time: no version is better than a made-up one).
fn pseudo_version(module_path: &str, revision: &str, time: &str) -> Option<String> {
    let rev = revision.get(..12)?;
    if !rev.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    // 2024-01-01T00:00:00Z, with optional fractional seconds.
    let t = time
        .strip_suffix('Z')
        .or_else(|| time.strip_suffix("+00:00"))?;
    let t = t.split('.').next()?;
    let b = t.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let shape = b.len() == 19
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && [0..4, 5..7, 8..10, 11..13, 14..16, 17..19]
            .into_iter()
            .all(digits);
    if !shape {
        return None;
    }
    let stamp: String = t.chars().filter(char::is_ascii_digit).collect();
    let last = module_path.rsplit('/').next().unwrap_or(module_path);
    let suffix = if module_path.starts_with("gopkg.in/") {
        last.rsplit_once(".v").map(|(_, n)| n)
    } else {
        last.strip_prefix('v')
    };
    let major = suffix
        .filter(|n| !n.is_empty() && n.bytes().all(|d| d.is_ascii_digit()))
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|n| *n >= 2)
        .map_or_else(|| "v0".to_string(), |n| format!("v{n}"));
    Some(format!("{major}.0.0-{stamp}-{}", rev.to_ascii_lowercase()))
}

/// `go1.27.3` → `v1.27.3` (release versions only).
fn stdlib_version(go: &str) -> Option<String> {
    let v = go.strip_prefix("go")?;
    let core = v.split([' ', '-', '+']).next()?;
    (!core.is_empty() && core.starts_with(|c: char| c.is_ascii_digit())).then(|| format!("v{core}"))
}

fn golang_purl(path: &str, version: Option<&str>) -> String {
    let segs: Vec<String> = path.split('/').map(enc).collect();
    match version {
        Some(v) => format!("pkg:golang/{}@{}", segs.join("/"), enc(v)),
        None => format!("pkg:golang/{}", segs.join("/")),
    }
}

fn package_purl(p: &OsPackage, distro: Option<&str>, qualifier: Option<&str>) -> String {
    let ns = match p.kind {
        "apk" => distro.unwrap_or("alpine"),
        _ => distro.unwrap_or("debian"),
    };
    let mut s = format!(
        "pkg:{}/{}/{}@{}",
        p.kind,
        enc(ns),
        enc(&p.name),
        enc(&p.version)
    );
    let mut q = Vec::new();
    if let Some(a) = &p.arch {
        q.push(format!("arch={}", enc(a)));
    }
    if let Some(d) = qualifier.filter(|d| !d.is_empty() && !d.ends_with('-')) {
        q.push(format!("distro={}", enc(d)));
    }
    if !q.is_empty() {
        s.push('?');
        s.push_str(&q.join("&"));
    }
    s
}

/// Percent-encodes a purl segment (everything but unreserved characters).
fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn prop(name: &str, value: &str) -> Value {
    json!({ "name": name, "value": value })
}

/// The image's name: the reference without source scheme and tag, last path component.
fn image_name(reference: &str) -> String {
    let uri = super::sarif::image_uri(reference);
    let path = uri.trim_start_matches("file://");
    let name = path.rsplit('/').find(|s| !s.is_empty()).unwrap_or("image");
    percent_decode(name)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `urn:uuid:` from a hash of the images' identities (RFC 9562 version 8, custom).
fn serial(reports: &[Report]) -> String {
    let mut h = Sha256::new();
    for r in reports {
        let id = r
            .image
            .manifest_digest
            .as_ref()
            .or(r.image.config_digest.as_ref())
            .map(ToString::to_string)
            .unwrap_or_else(|| r.image.reference.clone());
        h.update(id.as_bytes());
        h.update(r.image.platform.as_deref().unwrap_or("").as_bytes());
        h.update([0]);
    }
    let mut b: [u8; 16] = h.finalize()[..16].try_into().expect("16 bytes");
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls() {
        assert_eq!(
            golang_purl("github.com/foo/bar", Some("v1.2.3+incompatible")),
            "pkg:golang/github.com/foo/bar@v1.2.3%2Bincompatible"
        );
        assert_eq!(stdlib_version("go1.27.3").as_deref(), Some("v1.27.3"));
        assert_eq!(stdlib_version("go1.22rc1").as_deref(), Some("v1.22rc1"));
        assert_eq!(stdlib_version("devel go1.23-abc"), None);
        let p = OsPackage {
            kind: "deb",
            name: "libc6".into(),
            version: "2.36-9+deb12u10".into(),
            arch: Some("amd64".into()),
            source: None,
            license: None,
            db: String::new(),
        };
        assert_eq!(
            package_purl(&p, Some("debian"), Some("debian-12")),
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u10?arch=amd64&distro=debian-12"
        );
        assert_eq!(image_name("oci:build/out/clean:latest"), "clean");
        let rev = "4c6205c34c98088ff756f4096dd5ba582c30f9d4";
        for (path, time, want) in [
            (
                "example.com/app",
                "2024-01-01T00:00:00Z",
                Some("v0.0.0-20240101000000-4c6205c34c98"),
            ),
            (
                "example.com/app/v3",
                "2024-02-03T04:05:06.5Z",
                Some("v3.0.0-20240203040506-4c6205c34c98"),
            ),
            (
                "gopkg.in/yaml.v2",
                "2024-01-01T00:00:00Z",
                Some("v2.0.0-20240101000000-4c6205c34c98"),
            ),
            (
                "example.com/v1",
                "2024-01-01T00:00:00Z",
                Some("v0.0.0-20240101000000-4c6205c34c98"),
            ),
            ("example.com/app", "2024-01-01T01:00:00+01:00", None),
            ("example.com/app", "yesterday", None),
        ] {
            assert_eq!(
                pseudo_version(path, rev, time).as_deref(),
                want,
                "{path} {time}"
            );
        }
        assert_eq!(
            pseudo_version("example.com/app", "4c62", "2024-01-01T00:00:00Z"),
            None
        );
        assert!(serial(&[]).starts_with("urn:uuid:"));
    }
}
