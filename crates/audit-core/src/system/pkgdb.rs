//! OS package databases and the distribution's identity, for the SBOM.
//!
//! Read from the merged filesystem, which keeps these files' content ([`READS`]): Debian's
//! `/var/lib/dpkg/status` (installed packages only, `Status: install ok installed`),
//! distroless's `/var/lib/dpkg/status.d/<pkg>` (one paragraph per file, no `Status` field:
//! every file is installed; `*.md5sums` files are skipped), Alpine's `/lib/apk/db/installed` (`P:` name, `V:` version, `A:` arch, `o:` origin,
//! `L:` license), and `/etc/os-release` (through its symlink to `/usr/lib/os-release`).
//! The parsers take bytes and never fail: a malformed paragraph is skipped.

use serde::Serialize;

use crate::fs::MergedFs;
use crate::inspect::reads::{ContentRead, PathMatch, ReadBound};
use crate::path;

/// The files the package and distribution readers read. `/etc/os-release` is usually a
/// symlink to `/usr/lib/os-release`, and content is kept under the file's own path.
pub(crate) const READS: &[ContentRead] = &[
    ContentRead::whole("etc/os-release"),
    ContentRead::whole("usr/lib/os-release"),
    ContentRead::whole("var/lib/dpkg/status"),
    ContentRead {
        path: PathMatch::In(DPKG_STATUS_D),
        bound: ReadBound::Fragment,
    },
    ContentRead::whole("lib/apk/db/installed"),
];

/// distroless's dpkg database: one paragraph per file.
const DPKG_STATUS_D: &str = "var/lib/dpkg/status.d";

/// The distribution, from os-release.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Distro {
    /// `ID` (`debian`, `alpine`).
    pub id: String,
    /// `VERSION_ID` (`12`, `3.20.3`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version_id: String,
    /// `PRETTY_NAME`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub pretty_name: String,
}

/// One installed OS package.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct OsPackage {
    /// `deb` or `apk` (the purl type).
    pub kind: &'static str,
    /// Name.
    pub name: String,
    /// Version, as the database has it (with epoch).
    pub version: String,
    /// Architecture (`amd64`, `all`, `x86_64`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// Source package (dpkg `Source`, apk origin), when it differs from the name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// License (apk).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    /// The database file it was read from.
    pub db: String,
}

/// The fields of a deb822 paragraph, continuation lines folded away.
fn paragraphs(text: &str) -> Vec<Vec<(&str, &str)>> {
    let mut out = Vec::new();
    let mut cur: Vec<(&str, &str)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            cur.push((k.trim(), v.trim()));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Packages of a dpkg status file (or one `status.d` file when `require_status` is false).
pub(crate) fn parse_dpkg(text: &str, db: &str, require_status: bool) -> Vec<OsPackage> {
    let mut out = Vec::new();
    for p in paragraphs(text) {
        let get = |k: &str| {
            p.iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| *v)
        };
        let (Some(name), Some(version)) = (get("Package"), get("Version")) else {
            continue;
        };
        match get("Status") {
            Some(s)
                if !s.ends_with(" installed")
                    || s.split_whitespace().nth(2) != Some("installed") =>
            {
                continue
            }
            None if require_status => continue,
            _ => {}
        }
        // `Source: name (version)` when the binary version differs.
        let source = get("Source")
            .map(|s| s.split_whitespace().next().unwrap_or(s).to_string())
            .filter(|s| s != name);
        out.push(OsPackage {
            kind: "deb",
            name: name.to_string(),
            version: version.to_string(),
            arch: get("Architecture").map(str::to_string),
            source,
            license: None,
            db: path::display(db),
        });
    }
    out
}

/// Packages of an apk `installed` database.
pub(crate) fn parse_apk(text: &str, db: &str) -> Vec<OsPackage> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let get = |k: &str| {
            block
                .lines()
                .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix(':')))
        };
        let (Some(name), Some(version)) = (get("P"), get("V")) else {
            continue;
        };
        out.push(OsPackage {
            kind: "apk",
            name: name.to_string(),
            version: version.to_string(),
            arch: get("A").map(str::to_string),
            source: get("o").map(str::to_string).filter(|o| o != name),
            license: get("L").map(str::to_string),
            db: path::display(db),
        });
    }
    out
}

/// The distribution named by `/etc/os-release` (or `/usr/lib/os-release`).
pub(crate) fn distro(fs: &MergedFs) -> Option<Distro> {
    let c = fs
        .content("etc/os-release")
        .or_else(|| fs.content("usr/lib/os-release"))?;
    let text = String::from_utf8_lossy(c);
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
            .map(|v| v.trim().trim_matches('"').trim_matches('\'').to_string())
            .unwrap_or_default()
    };
    let d = Distro {
        id: get("ID"),
        version_id: get("VERSION_ID"),
        pretty_name: get("PRETTY_NAME"),
    };
    (!d.id.is_empty()).then_some(d)
}

/// Every installed OS package the image's databases list, sorted by kind and name.
pub(crate) fn packages(fs: &MergedFs) -> Vec<OsPackage> {
    let mut out = Vec::new();
    if let Some(c) = fs.content("var/lib/dpkg/status") {
        out.extend(parse_dpkg(
            &String::from_utf8_lossy(c),
            "var/lib/dpkg/status",
            true,
        ));
    }
    for (p, n) in fs.descendants(DPKG_STATUS_D) {
        if !n.is_file() || p.ends_with(".md5sums") || path::parent(p) != DPKG_STATUS_D {
            continue;
        }
        if let Some(c) = fs.content_of(p, n) {
            out.extend(parse_dpkg(&String::from_utf8_lossy(c), p, false));
        }
    }
    if let Some(c) = fs.content("lib/apk/db/installed") {
        out.extend(parse_apk(
            &String::from_utf8_lossy(c),
            "lib/apk/db/installed",
        ));
    }
    out.sort();
    out.dedup_by(|a, b| {
        a.kind == b.kind && a.name == b.name && a.version == b.version && a.arch == b.arch
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_status_keeps_installed_packages_only() {
        let t = "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u10\nArchitecture: amd64\nSource: glibc\nDescription: GNU C Library\n multi-line\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 1\n\nPackage: tzdata\nVersion: 2025b-0+deb12u1\nArchitecture: all\n";
        let ps = parse_dpkg(t, "var/lib/dpkg/status", true);
        assert_eq!(ps.len(), 1);
        assert_eq!(
            (
                ps[0].name.as_str(),
                ps[0].version.as_str(),
                ps[0].source.as_deref()
            ),
            ("libc6", "2.36-9+deb12u10", Some("glibc"))
        );
        // A status.d file has no Status field.
        let ps = parse_dpkg(
            "Package: tzdata\nVersion: 2025b-0+deb12u1\nArchitecture: all\n",
            "var/lib/dpkg/status.d/tzdata",
            false,
        );
        assert_eq!(ps[0].db, "/var/lib/dpkg/status.d/tzdata");
    }

    #[test]
    fn apk_installed() {
        let t = "C:Q1abc=\nP:musl\nV:1.2.5-r0\nA:x86_64\nL:MIT\no:musl\n\nC:Q1def=\nP:libcrypto3\nV:3.3.2-r0\nA:x86_64\no:openssl\nL:Apache-2.0\n";
        let ps = parse_apk(t, "lib/apk/db/installed");
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[1].source.as_deref(), Some("openssl"));
        assert_eq!(ps[0].source, None);
        assert_eq!(ps[0].license.as_deref(), Some("MIT"));
    }
}
