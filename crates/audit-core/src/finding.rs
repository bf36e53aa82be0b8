//! Findings: what a rule reports, with evidence that points at paths, layers and build steps.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// How bad a finding is. Ordered: `Info < Low < Medium < High < Critical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Hygiene.
    Low,
    /// Should be fixed.
    Medium,
    /// Fix before shipping.
    High,
    /// The container cannot start, or a secret is exposed.
    Critical,
}

impl Severity {
    /// All severities, most severe first.
    pub const ALL: [Self; 5] = [
        Self::Critical,
        Self::High,
        Self::Medium,
        Self::Low,
        Self::Info,
    ];

    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "info" => Ok(Self::Info),
            "low" => Ok(Self::Low),
            "medium" => Ok(Self::Medium),
            "high" => Ok(Self::High),
            "critical" => Ok(Self::Critical),
            _ => Err(format!(
                "unknown severity {s:?} (expected critical, high, medium, low or info)"
            )),
        }
    }
}

/// A layer, as evidence.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct LayerRef {
    /// Index in the manifest, base = 0.
    pub index: usize,
    /// Blob digest.
    pub digest: Digest,
}

/// A build step, as evidence.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct HistoryRef {
    /// Index in the config's `history`.
    pub index: usize,
    /// The step's `created_by`.
    pub created_by: String,
}

/// Whether the evidence is in the final filesystem or only in a layer blob.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state", content = "layer")]
pub enum Visibility {
    /// Present in the merged filesystem (or not about a file).
    #[default]
    Final,
    /// Removed by a whiteout in this later layer; still in the blob that added it.
    DeletedIn(usize),
    /// Replaced in this later layer; still in the blob that added it.
    OverwrittenIn(usize),
}

/// Typed details of one piece of evidence.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Detail {
    /// A field of the image config.
    ConfigField {
        /// E.g. `Env`, `User`, `Entrypoint`.
        field: String,
        /// The offending value (masked where secret).
        value: String,
    },
    /// A size.
    Bytes {
        /// Bytes.
        bytes: u64,
    },
    /// A Go binary's identity.
    GoBinary {
        /// Go version.
        go_version: String,
        /// Main package path.
        path: String,
        /// Main module version.
        version: String,
    },
    /// Credentials found in a file (masked previews, line numbers).
    Secrets {
        /// One entry per credential.
        hits: Vec<crate::inspect::SecretHit>,
    },
    /// A free-form fact.
    Note {
        /// Text.
        text: String,
    },
}

/// Where a finding was observed.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Evidence {
    /// Absolute path in the image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The layer that holds the bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<LayerRef>,
    /// The build step that produced that layer (or the history entry itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<HistoryRef>,
    /// Final filesystem, or deleted/overwritten later.
    pub visibility: Visibility,
    /// Typed details.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Detail>,
}

/// One result of one rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Rule id (`GO001`).
    pub rule: &'static str,
    /// Rule name (`interpreter-missing`).
    pub name: &'static str,
    /// Severity after policy overrides.
    pub severity: Severity,
    /// One line a human can act on.
    pub message: String,
    /// Where.
    pub evidence: Vec<Evidence>,
    /// How to fix it.
    pub remediation: Cow<'static, str>,
}

impl Finding {
    /// The ordering reports use: severity (most severe first), rule id, first path, layer.
    pub fn sort_key(
        &self,
    ) -> (
        std::cmp::Reverse<Severity>,
        &'static str,
        Option<&str>,
        Option<usize>,
        &str,
    ) {
        let first = self.evidence.first();
        (
            std::cmp::Reverse(self.severity),
            self.rule,
            first.and_then(|e| e.path.as_deref()),
            first.and_then(|e| e.layer.as_ref().map(|l| l.index)),
            &self.message,
        )
    }
}
