//! Audit OCI container images.
#![deny(missing_docs)]

pub mod digest;
pub mod error;
pub mod fs;
pub mod inspect;
pub mod layer;
pub mod limits;
pub mod oci;
pub mod platform;
pub mod source;
