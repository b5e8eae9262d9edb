//! The domain: pure values and decisions, no I/O. The environment spec, backups (tags, manifest,
//! retention) and drills (RTO/RPO, verdict, report rendering).

pub mod backup;
pub mod drill;
pub mod spec;
