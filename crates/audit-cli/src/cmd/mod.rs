//! One module per command: argument translation into `audit_core` calls.

pub(crate) mod audit;
pub(crate) mod cache;
pub(crate) mod rules;
pub(crate) mod serve;
pub(crate) mod sweep;
