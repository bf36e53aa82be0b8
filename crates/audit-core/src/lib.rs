//! Audit OCI container images for Go-in-container anti-patterns.
//!
//! The pipeline, one stage per module (docs/architecture.md has the map): a [`source`] (OCI
//! layout, archive, root filesystem, or a registry with the default feature `registry`) names
//! image manifests and opens blobs; the layer pipeline streams each layer once
//! (digest-verified, decompressed, tar-walked) and inspects files as they pass (ELF, Go build
//! info); the layers are merged into one filesystem view with provenance; the loader check
//! proves whether executables can start; [`rules`] turn facts into [`finding`]s; [`policy`]
//! adjusts them; [`report`] renders. [`admission`] turns findings and a policy into an
//! allow/warn/deny verdict (the CLI's `--fail-on` and its admission webhook share it);
//! [`store`] keeps layer analyses across audits (memory, disk, Redis) and [`cache`] holds the
//! byte-bounded LRU; [`sweep`] audits many images against one shared store.
//!
//! The entry points are re-exported here: [`open`] / [`open_local`] name an image,
//! [`Auditor`] audits it into [`Report`]s, [`Error`] says why it could not.
//!
//! ```
//! use audit_core::{open_local, Auditor};
//!
//! let demo = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/demo");
//! let src = open_local(demo)?;
//! let reports = Auditor::builder().jobs(2).build().audit(&src, "demo")?;
//! let report = &reports[0];
//! // The demo's cgo binary needs a glibc loader the image does not have.
//! assert!(report.findings.iter().any(|f| f.rule == "GO001"));
//! # Ok::<(), audit_core::Error>(())
//! ```
//!
//! The library never prints and never exits; output goes through [`report::Format`] into any
//! `io::Write`, and diagnostics through `tracing`.
#![deny(missing_docs)]
#![warn(unnameable_types)]

pub use audit::{Auditor, AuditorBuilder, Progress};
pub use digest::Digest;
pub use error::{Error, SourceError};
pub use finding::{Finding, Severity};
pub use limits::Limits;
pub use policy::{Policy, PolicyFile};
pub use report::{Format, Report};
pub use source::{open, open_local, PlatformChoice, Source, SourceOptions};

// Not API (hidden): the content plan the auditor walks layers with, for the benchmarks and
// the integration tests that call `layer::analyze_blob` / `inspect::inspect_reader` directly
// (benches/benches/, tests/elf_oracle.rs, tests/sources.rs).
#[doc(hidden)]
pub use audit::content_plan;

pub mod admission;
mod audit;
pub mod cache;
mod date;
pub mod digest;
pub mod error;
pub mod finding;
mod fs;
mod hostfs;
// Not API (hidden): per-file inspection, reachable for the ELF oracle test
// (tests/elf_oracle.rs, which compares every field with readelf and `go version -m`) and the
// ELF benchmark (benches/benches/elf_inspect.rs).
#[doc(hidden)]
pub mod inspect;
// Not API (hidden): the layer pipeline, reachable for the layer-stream benchmark and the
// single-layer tests in tests/sources.rs.
#[doc(hidden)]
pub mod layer;
pub mod limits;
pub mod oci;
mod path;
pub mod platform;
pub mod policy;
pub mod profile;
pub mod report;
pub mod rules;
pub mod source;
pub mod store;
#[cfg(feature = "registry")]
pub mod sweep;
mod system;

#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;

#[cfg(test)]
mod testutil;
