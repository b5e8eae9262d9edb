//! The domain: pure values and decisions, no I/O. The environment spec, plans (changes, reversibility,
//! policy findings), health verdicts, alarm resolution, backups (tags, manifest, retention) and drills
//! (RTO/RPO, verdict, report rendering).

pub mod arn;
pub mod backup;
pub mod drill;
pub mod fleet;
pub mod health;
pub mod names;
pub mod plan;
pub mod readable;
pub mod rollback;
pub mod spec;
