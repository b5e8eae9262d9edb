//! The library half of the `opsplane` CLI: the local plane the demo, `run --local` and the end-to-end tests
//! share.

#![warn(missing_docs)]

pub mod approve;
pub mod audit;
pub mod demo;
pub mod history;
pub mod plan;
pub mod plane;
pub mod report;
pub mod run;
pub mod watch;
