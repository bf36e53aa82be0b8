//! The image's own system software, emulated over the merged filesystem once every layer is
//! applied: [`ldso`] resolves each executable's interpreter and libraries with the real
//! loaders' rules (can it start?), and [`pkgdb`] reads the OS package databases and the
//! distribution's identity (for the SBOM). Both read only what [`crate::fs::MergedFs`]
//! holds, and never execute anything from the image.

pub(crate) mod ldso;
pub(crate) mod pkgdb;
