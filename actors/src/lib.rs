//! Tenant actors for permetrix.
pub mod domain;
