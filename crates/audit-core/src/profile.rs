//! Distroless profiles: what a base image is expected to contain, as data.
//!
//! A profile lists required files and directories (with kind, mode, owner), `/etc/passwd` and
//! `/etc/group` entries, config `Env` facts, the user class, the shared libraries and dpkg
//! packages it provides, whether only static executables can run, the globs of content it
//! owns and its approximate size. The built-in `static`, `base` and `cc` profiles are the TOML
//! file `profiles.toml` next to this module, parsed with the same [`ProfileSpec`] that reads
//! user profiles from a policy file (`[profiles.NAME]`), so both have the same power.
//! Every profile `NAME` also exists as `NAME:nonroot`, which requires a non-root `User`.
//!
//! The rules DL001–DL003 (`rules/distroless.rs`) compare an image with a profile.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;

use crate::error::PolicyError;

/// The built-in profiles, in the policy-file format.
const BUILTIN_TOML: &str = include_str!("profiles.toml");

/// Names of the built-in profiles, smallest first (the order `auto` considers them in).
pub const BUILTIN: [&str; 3] = ["static", "base", "cc"];

/// The `:nonroot` suffix.
pub const NONROOT_SUFFIX: &str = ":nonroot";

/// One profile as written in TOML, before validation.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileSpec {
    /// A profile whose expectations this one adds to.
    pub extends: Option<String>,
    /// One line.
    pub description: Option<String>,
    /// Approximate uncompressed size of the real image.
    pub baseline_bytes: Option<u64>,
    /// Only static executables can run.
    #[serde(rename = "static")]
    pub static_only: Option<bool>,
    /// `any` or `nonroot`.
    pub user: Option<String>,
    /// Required files and directories.
    #[serde(default)]
    pub path: Vec<PathSpec>,
    /// Required `/etc/passwd` entries.
    #[serde(default)]
    pub users: Vec<AccountSpec>,
    /// Required `/etc/group` entries.
    #[serde(default)]
    pub groups: Vec<AccountSpec>,
    /// Required config `Env` entries (`*` = any non-empty value).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Sonames that must be present.
    #[serde(default)]
    pub libraries: Vec<String>,
    /// Sonames that may be present.
    #[serde(default)]
    pub optional_libraries: Vec<String>,
    /// dpkg packages whose metadata must be present.
    #[serde(default)]
    pub packages: Vec<String>,
    /// Globs of content the profile provides.
    #[serde(default)]
    pub owns: Vec<String>,
}

/// A required path, as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathSpec {
    /// Absolute path.
    pub path: String,
    /// What it is, for messages.
    pub what: Option<String>,
    /// `file`, `dir` or `any`.
    pub kind: Option<String>,
    /// Exact permission bits, octal (`1777`).
    pub mode: Option<String>,
    /// Owner.
    pub uid: Option<u32>,
    /// Group.
    pub gid: Option<u32>,
    /// A file must have bytes, a directory entries.
    #[serde(default)]
    pub nonempty: bool,
    /// `false`: baseline content, not a requirement.
    pub required: Option<bool>,
}

/// A passwd or group entry, as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSpec {
    /// Name.
    pub name: String,
    /// User id (passwd).
    pub uid: Option<u32>,
    /// Group id.
    pub gid: Option<u32>,
    /// Home directory (passwd).
    pub home: Option<String>,
}

/// What kind of node a path must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathKind {
    /// Regular file (after following symlinks).
    File,
    /// Directory.
    Dir,
    /// Anything.
    Any,
}

/// A validated required path.
#[derive(Clone, Debug)]
pub struct PathExpect {
    /// Root-relative path.
    pub path: String,
    /// What it is.
    pub what: String,
    /// Kind.
    pub kind: PathKind,
    /// Exact mode bits (incl. sticky/setuid).
    pub mode: Option<u32>,
    /// Owner.
    pub uid: Option<u32>,
    /// Group.
    pub gid: Option<u32>,
    /// Must have bytes or entries.
    pub nonempty: bool,
    /// A requirement (DL001) or only baseline content.
    pub required: bool,
}

/// A required passwd or group entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Name.
    pub name: String,
    /// uid (passwd) or gid (group).
    pub id: u32,
    /// Primary group (passwd).
    pub gid: Option<u32>,
    /// Home directory (passwd).
    pub home: Option<String>,
}

/// Which users a profile accepts in the config's `User`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserExpect {
    /// Any, root included (distroless `:latest` runs as `0`).
    Any,
    /// A non-root user (distroless `:nonroot` runs as `65532`).
    NonRoot,
}

/// A validated profile.
#[derive(Clone, Debug)]
pub struct Profile {
    /// Name (`static:nonroot`).
    pub name: String,
    /// One line.
    pub description: String,
    /// Approximate uncompressed size of the real image.
    pub baseline_bytes: u64,
    /// Only static executables can run.
    pub static_only: bool,
    /// User class.
    pub user: UserExpect,
    /// Paths (required and baseline).
    pub paths: Vec<PathExpect>,
    /// `/etc/passwd` entries.
    pub users: Vec<Account>,
    /// `/etc/group` entries.
    pub groups: Vec<Account>,
    /// Config `Env`: name and exact value (`None`: any non-empty value).
    pub env: Vec<(String, Option<String>)>,
    /// Required sonames.
    pub libraries: Vec<String>,
    /// Allowed sonames.
    pub optional_libraries: Vec<String>,
    /// Required dpkg packages.
    pub packages: Vec<String>,
    /// Globs of owned content, as written.
    pub owns: Vec<String>,
    owns_set: globset::GlobSet,
}

impl Profile {
    /// Whether the profile provides `soname` (required or optional).
    pub fn provides_library(&self, soname: &str) -> bool {
        self.libraries
            .iter()
            .chain(&self.optional_libraries)
            .any(|l| l == soname)
    }

    /// Whether a root-relative path is content the profile provides.
    pub fn owns(&self, p: &str) -> bool {
        self.owns_set.is_match(p.trim_start_matches('/'))
    }

    /// The `:nonroot` variant of this profile.
    pub fn nonroot(&self) -> Self {
        let mut p = self.clone();
        if !p.name.ends_with(NONROOT_SUFFIX) {
            p.name.push_str(NONROOT_SUFFIX);
        }
        p.user = UserExpect::NonRoot;
        p
    }
}

/// A set of profiles by name: the built-ins plus those of a policy file.
#[derive(Clone, Debug)]
pub struct Profiles {
    by_name: BTreeMap<String, Arc<Profile>>,
}

impl Default for Profiles {
    fn default() -> Self {
        builtin().clone()
    }
}

/// The built-in profiles.
pub fn builtin() -> &'static Profiles {
    static B: OnceLock<Profiles> = OnceLock::new();
    B.get_or_init(|| {
        let specs: BTreeMap<String, ProfileSpec> =
            toml::from_str(BUILTIN_TOML).expect("profiles.toml parses (tested)");
        Profiles::empty()
            .with_specs("profiles.toml", &specs)
            .expect("profiles.toml validates (tested)")
    })
}

impl Profiles {
    fn empty() -> Self {
        Self {
            by_name: BTreeMap::new(),
        }
    }

    /// Adds profiles written in TOML; `key` names the table for errors (`profiles`). A spec
    /// may extend a built-in, an earlier one or a later one in the same table.
    pub fn with_specs(
        mut self,
        key: &str,
        specs: &BTreeMap<String, ProfileSpec>,
    ) -> Result<Self, PolicyError> {
        let mut pending: Vec<&String> = specs.keys().collect();
        while !pending.is_empty() {
            let before = pending.len();
            let mut still = Vec::new();
            for name in pending {
                let k = format!("{key}.{name}");
                if name.contains(':') || name == "auto" || name.is_empty() {
                    return Err(PolicyError::Invalid {
                        key: k,
                        reason: "a profile name may not be empty, \"auto\" or contain ':'".into(),
                    });
                }
                let spec = &specs[name];
                let parent = match &spec.extends {
                    None => None,
                    Some(e) if e == name => {
                        return Err(PolicyError::Invalid {
                            key: format!("{k}.extends"),
                            reason: "a profile cannot extend itself".into(),
                        })
                    }
                    Some(e) => match self.get(e) {
                        Some(p) => Some(p),
                        None if specs.contains_key(e.as_str()) => {
                            still.push(name);
                            continue;
                        }
                        None => {
                            return Err(PolicyError::Invalid {
                                key: format!("{k}.extends"),
                                reason: format!("unknown profile {e:?}"),
                            })
                        }
                    },
                };
                let p = validate(&k, name, spec, parent.as_deref())?;
                self.by_name.insert(name.clone(), Arc::new(p));
            }
            if still.len() == before {
                return Err(PolicyError::Invalid {
                    key: format!("{key}.{}.extends", still[0]),
                    reason: "profiles extend each other in a cycle".into(),
                });
            }
            pending = still;
        }
        Ok(self)
    }

    /// A profile by name; `NAME:nonroot` gives the non-root variant.
    pub fn get(&self, name: &str) -> Option<Arc<Profile>> {
        match name.strip_suffix(NONROOT_SUFFIX) {
            Some(base) => self.by_name.get(base).map(|p| Arc::new(p.nonroot())),
            None => self.by_name.get(name).cloned(),
        }
    }

    /// Profile names (without `:nonroot` variants).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// Parses a `--profile` value: `auto`, or a known name (`NAME` or `NAME:nonroot`).
    pub fn choose(&self, key: &str, name: &str) -> Result<ProfileChoice, PolicyError> {
        if name == "auto" {
            return Ok(ProfileChoice::Auto);
        }
        self.get(name).map(ProfileChoice::Named).ok_or_else(|| {
            let known: Vec<&str> = self.names().collect();
            PolicyError::Invalid {
                key: key.to_string(),
                reason: format!(
                    "unknown profile {name:?} (known: auto, {}; each also as NAME:nonroot)",
                    known.join(", ")
                ),
            }
        })
    }
}

/// Which profile DL rules compare with.
#[derive(Clone, Debug)]
pub enum ProfileChoice {
    /// The closest built-in profile, from what the image contains.
    Auto,
    /// This one.
    Named(Arc<Profile>),
}

fn validate(
    key: &str,
    name: &str,
    s: &ProfileSpec,
    parent: Option<&Profile>,
) -> Result<Profile, PolicyError> {
    let bad = |sub: &str, reason: String| PolicyError::Invalid {
        key: format!("{key}{sub}"),
        reason,
    };
    let mut p = match parent {
        Some(pp) => Profile {
            name: name.to_string(),
            ..pp.clone()
        },
        None => Profile {
            name: name.to_string(),
            description: String::new(),
            baseline_bytes: 0,
            static_only: false,
            user: UserExpect::Any,
            paths: Vec::new(),
            users: Vec::new(),
            groups: Vec::new(),
            env: Vec::new(),
            libraries: Vec::new(),
            optional_libraries: Vec::new(),
            packages: Vec::new(),
            owns: Vec::new(),
            owns_set: globset::GlobSet::empty(),
        },
    };
    if let Some(d) = &s.description {
        p.description = d.clone();
    }
    if let Some(b) = s.baseline_bytes {
        p.baseline_bytes = b;
    }
    if let Some(st) = s.static_only {
        p.static_only = st;
    }
    if let Some(u) = &s.user {
        p.user = match u.as_str() {
            "any" => UserExpect::Any,
            "nonroot" => UserExpect::NonRoot,
            other => {
                return Err(bad(
                    ".user",
                    format!("{other:?} is not \"any\" or \"nonroot\""),
                ))
            }
        };
    }
    for (i, ps) in s.path.iter().enumerate() {
        let k = format!(".path[{i}]");
        if !ps.path.starts_with('/') {
            return Err(bad(
                &format!("{k}.path"),
                format!("{:?} is not an absolute path", ps.path),
            ));
        }
        let kind = match ps.kind.as_deref().unwrap_or("any") {
            "file" => PathKind::File,
            "dir" => PathKind::Dir,
            "any" => PathKind::Any,
            other => {
                return Err(bad(
                    &format!("{k}.kind"),
                    format!("{other:?} is not file, dir or any"),
                ))
            }
        };
        let mode = match &ps.mode {
            None => None,
            Some(m) => Some(
                u32::from_str_radix(m, 8)
                    .ok()
                    .filter(|v| *v <= 0o7777)
                    .ok_or_else(|| {
                        bad(&format!("{k}.mode"), format!("{m:?} is not an octal mode"))
                    })?,
            ),
        };
        let rel = ps.path.trim_matches('/').to_string();
        let e = PathExpect {
            what: ps.what.clone().unwrap_or_else(|| ps.path.clone()),
            path: rel,
            kind,
            mode,
            uid: ps.uid,
            gid: ps.gid,
            nonempty: ps.nonempty,
            required: ps.required.unwrap_or(true),
        };
        match p.paths.iter_mut().find(|x| x.path == e.path) {
            Some(x) => *x = e,
            None => p.paths.push(e),
        }
    }
    for (i, a) in s.users.iter().enumerate() {
        let uid = a
            .uid
            .ok_or_else(|| bad(&format!(".users[{i}].uid"), "missing".into()))?;
        merge_account(
            &mut p.users,
            Account {
                name: a.name.clone(),
                id: uid,
                gid: a.gid,
                home: a.home.clone(),
            },
        );
    }
    for (i, g) in s.groups.iter().enumerate() {
        if g.uid.is_some() || g.home.is_some() {
            return Err(bad(
                &format!(".groups[{i}]"),
                "a group has only name and gid".into(),
            ));
        }
        let gid = g
            .gid
            .ok_or_else(|| bad(&format!(".groups[{i}].gid"), "missing".into()))?;
        merge_account(
            &mut p.groups,
            Account {
                name: g.name.clone(),
                id: gid,
                gid: None,
                home: None,
            },
        );
    }
    for (k, v) in &s.env {
        let v = (v != "*").then(|| v.clone());
        match p.env.iter_mut().find(|(n, _)| n == k) {
            Some(x) => x.1 = v,
            None => p.env.push((k.clone(), v)),
        }
    }
    extend_unique(&mut p.libraries, &s.libraries);
    extend_unique(&mut p.optional_libraries, &s.optional_libraries);
    extend_unique(&mut p.packages, &s.packages);
    extend_unique(&mut p.owns, &s.owns);
    let mut b = globset::GlobSetBuilder::new();
    for (i, g) in p.owns.iter().enumerate() {
        let glob = globset::GlobBuilder::new(g.trim_start_matches('/'))
            .literal_separator(true)
            .build()
            .map_err(|e| bad(&format!(".owns[{i}]"), format!("bad glob {g:?}: {e}")))?;
        b.add(glob);
    }
    p.owns_set = b.build().map_err(|e| bad(".owns", e.to_string()))?;
    Ok(p)
}

fn merge_account(list: &mut Vec<Account>, a: Account) {
    match list.iter_mut().find(|x| x.name == a.name) {
        Some(x) => *x = a,
        None => list.push(a),
    }
}

fn extend_unique(list: &mut Vec<String>, more: &[String]) {
    for m in more {
        if !list.contains(m) {
            list.push(m.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse_and_extend() {
        let b = builtin();
        assert_eq!(b.names().collect::<Vec<_>>(), vec!["base", "cc", "static"]);
        let st = b.get("static").unwrap();
        assert!(st.static_only && st.libraries.is_empty() && st.user == UserExpect::Any);
        assert!(st
            .paths
            .iter()
            .any(|p| p.path == "tmp" && p.mode == Some(0o1777)));
        assert!(
            st.owns("/etc/passwd")
                && st.owns("usr/share/zoneinfo/Europe/Berlin")
                && !st.owns("app")
        );
        let cc = b.get("cc:nonroot").unwrap();
        assert_eq!(cc.name, "cc:nonroot");
        assert_eq!(cc.user, UserExpect::NonRoot);
        assert!(!cc.static_only);
        assert!(
            cc.provides_library("libc.so.6")
                && cc.provides_library("libstdc++.so.6")
                && cc.provides_library("libmvec.so.1")
        );
        assert!(
            cc.packages.contains(&"tzdata".to_string())
                && cc.packages.contains(&"libstdc++6".to_string())
        );
        assert_eq!(cc.users.len(), 3);
        assert!(cc.owns("usr/lib/x86_64-linux-gnu/gconv/UTF-16.so"));
        let base = b.get("base").unwrap();
        assert!(!base.provides_library("libstdc++.so.6"));
    }

    #[test]
    fn user_profiles_extend_and_errors_name_the_key() {
        let specs: BTreeMap<String, ProfileSpec> = toml::from_str(
            r#"
            [app]
            extends = "corp"
            [[app.path]]
            path = "/srv/data"
            kind = "dir"
            [corp]
            extends = "static"
            user = "nonroot"
            packages = ["corp-ca"]
            "#,
        )
        .unwrap();
        let ps = Profiles::default().with_specs("profiles", &specs).unwrap();
        let app = ps.get("app").unwrap();
        assert_eq!(app.user, UserExpect::NonRoot);
        assert!(
            app.packages.contains(&"corp-ca".into()) && app.packages.contains(&"tzdata".into())
        );
        assert!(app.paths.iter().any(|p| p.path == "srv/data"));
        assert!(matches!(
            ps.choose("--profile", "auto").unwrap(),
            ProfileChoice::Auto
        ));

        let bad = |t: &str| {
            let specs: BTreeMap<String, ProfileSpec> = toml::from_str(t).unwrap();
            Profiles::default()
                .with_specs("profiles", &specs)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            bad("[x]\nextends = \"nope\""),
            "profiles.x.extends: unknown profile \"nope\""
        );
        assert_eq!(
            bad("[x]\n[[x.path]]\npath = \"/tmp\"\nmode = \"9\""),
            "profiles.x.path[0].mode: \"9\" is not an octal mode"
        );
        assert_eq!(
            bad("[x]\nowns = [\"a/[\"]").split(':').next().unwrap(),
            "profiles.x.owns[0]"
        );
        assert!(bad("[a]\nextends = \"b\"\n[b]\nextends = \"a\"").contains("cycle"));
        let e = Profiles::default()
            .choose("--profile", "distroless")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--profile: unknown profile \"distroless\""),
            "{e}"
        );
    }
}
