//! opsplane's library: typed configuration, AWS adapters, the control plane's own bootstrap, error names,
//! telemetry and the local AWS world. Handlers in `functions/` and the `opsplane` CLI are thin layers over it.

pub mod approval;
pub mod audit;
pub mod aws;
pub mod bootstrap;
pub mod boundary;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod first_use;
pub mod fleet;
pub mod future;
pub mod idempotency;
pub mod lock;
pub mod notify;
pub mod ports;
pub mod probe;
pub mod quota;
pub mod redact;
pub mod secrets;
pub mod state;
pub mod sweep;
pub mod telemetry;

pub use config::Config;
pub use error::{ErrorName, OpsError};
