//! The library half of the `opsplane` CLI: the commands as functions the binary and the end-to-end tests
//! share (the local plane they run on is the `opsplane-local` crate).

pub mod audit;
pub mod capacity;
pub mod demo;
pub mod history;
pub mod plan;
pub mod progress;
pub mod report;
pub mod run;
pub mod watch;
