//! Ports: one small trait per capability the handlers need from the world, each with one adapter over AWS
//! (or the network) and one in the local world. A newcomer finds every seam here:
//!
//! | port | what | real adapter | local adapter |
//! |---|---|---|---|
//! | [`Executions`] | start, status, stop, history, task tokens | `aws::sfn::SfnExecutions` | the local engine (`opsplane-local`) |
//! | [`Lock`] | the environment lock, fenced | `lock::DynamoLock`, `lock::S3Lock` | the same, against moto |
//! | [`Clock`] | the time | `clock::SystemClock` | `clock::ManualClock`, the engine's virtual clock |
//! | [`SqlProbe`] | a SQL login and canary query | `probe::PostgresProbe` | the same, against a local PostgreSQL |
//! | [`SecretSource`], [`AuthTokenSource`] | credentials by reference | Secrets Manager, RDS IAM auth | the same, against moto |
//! | [`HttpProber`] | an HTTP health check | reqwest (the health-check function) | the same, against a loopback server |

pub mod executions;
pub mod http;

pub use crate::clock::Clock;
pub use crate::future::BoxFuture;
pub use crate::lock::Lock;
pub use crate::probe::SqlProbe;
pub use crate::secrets::{AuthTokenSource, SecretSource};
pub use executions::Executions;
pub use http::HttpProber;
