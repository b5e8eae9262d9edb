//! The local world: moto's server on a loopback port, the local plane that runs opsplane's definitions on
//! the local engine with every handler in-process, and the local adapters of the ports (the engine as the
//! execution service). `opsplane demo`, `opsplane run --local` and the end-to-end tests run here.

pub mod executions;
pub mod moto;
pub mod plane;
pub mod register;
pub mod seed;
pub mod world;

pub use executions::EngineExecutions;
pub use moto::{LocalError, MotoServer, project_root};
pub use plane::{LocalPlane, PlaneError};
pub use register::{function_error, register};
pub use seed::SeedError;
pub use world::{World, WorldClock, WorldError, WorldNetwork};
