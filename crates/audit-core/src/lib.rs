//! Audit OCI container images.
#![deny(missing_docs)]

pub mod audit;
pub mod digest;
pub mod error;
pub mod finding;
pub mod fs;
pub mod inspect;
pub mod layer;
pub mod limits;
pub mod oci;
pub mod platform;
pub mod policy;
pub mod report;
pub mod rules;
pub mod source;
