//! The local Amazon States Language engine and opsplane's workflow definitions.
//!
//! Definitions are parsed and validated into a typed model ([`model`]), then run by an [`Engine`]
//! in-process: handlers are registered by function name and called through the Lambda JSON boundary,
//! time runs on a virtual clock, and every execution records AWS's history events.

pub mod choice;
pub mod conformance;
pub mod engine;
pub mod error;
mod execution;
pub mod handler;
pub mod history;
pub mod intrinsic;
pub mod item_reader;
pub mod jsonata;
pub mod lint;
pub mod model;
pub mod path;
mod probe;
mod runtime;
#[cfg(feature = "s3")]
pub mod s3;
pub mod sync_execution;
pub mod test_state;
pub mod validate;
pub mod workflow;

pub use engine::{
    Description, Engine, FunctionError, Handler, HistoryEvent, Status, TaskContext, function_name,
    substitute,
};
pub use error::{EngineError, Failure, ValidationError};
pub use item_reader::{ItemReader, MemoryItemReader, ObjectSummary};
pub use workflow::{UnknownWorkflow, Workflow};
