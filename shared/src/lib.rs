//! opsplane's library: typed configuration, AWS adapters, the control plane's own bootstrap, error names,
//! telemetry and the local AWS world. Handlers in `functions/` and the `opsplane` CLI are thin layers over it.

pub mod aws;
pub mod bootstrap;
pub mod config;
pub mod error;
pub mod local;
pub mod telemetry;

pub use config::Config;
pub use error::{ErrorName, OpsError};
