//! Audit OCI container images for Go-in-container anti-patterns.
//!
//! The pipeline, one module per stage: a [`source`] (OCI layout, archive, root filesystem, or
//! a registry with the default feature `registry`) names image manifests and opens blobs;
//! [`layer`] streams each layer once (digest-verified, decompressed, tar-walked) and
//! [`inspect`]s files as they pass (ELF, Go build info); [`fs`] applies the layers into a
//! merged view with provenance; [`system::ldso`] proves whether executables can start;
//! [`rules`] turn facts into [`finding`]s; [`policy`] adjusts them; [`report`] renders.
//! [`admission`] turns findings and a policy into an allow/warn/deny verdict (the CLI's
//! `--fail-on` and its admission webhook share it); [`store`] keeps layer analyses across
//! audits (memory, disk, Redis) and [`cache`] holds the byte-bounded LRU.
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

pub use audit::{Auditor, AuditorBuilder};
pub use error::Error;
pub use finding::{Finding, Severity};
pub use policy::Policy;
pub use report::Report;
pub use source::{open, open_local, Source, SourceOptions};

pub mod admission;
pub mod audit;
pub mod cache;
mod date;
pub mod digest;
pub mod error;
pub mod finding;
pub mod fs;
mod hostfs;
pub mod inspect;
pub mod layer;
pub mod limits;
pub mod oci;
pub mod path;
pub mod platform;
pub mod policy;
pub mod profile;
pub mod report;
pub mod rules;
pub mod source;
pub mod store;
#[cfg(feature = "registry")]
pub mod sweep;
pub mod system;

#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;

#[cfg(test)]
mod testutil;
