//! Operator tools: backups ([`backup`]), demo data ([`demo`]), moving in from the old
//! license server ([`import`]), what start-up checks beyond the store
//! ([`startup_checks`]), surviving storage faults ([`storage_faults`]), and, in test
//! builds, fault injection.
pub mod backup;
pub mod demo;
#[cfg(feature = "fault-injection")]
pub mod fault_injection;
pub mod import;
pub mod startup_checks;
pub mod storage_faults;
