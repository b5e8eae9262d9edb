//! The environment spec: the YAML document at `specs/<env>/spec.yaml`, parsed and validated.
//!
//! Parsing never guesses: an unknown field is an error (a typo in `retention_days` must not silently turn
//! retention off), and every validation error names the field by its path and says what is allowed.
//!
//! The spec's parts live in the files named for them; everything is re-exported here, so callers name
//! `domain::spec::RdsSpec` whatever file holds it.

mod checks;
mod eks_settings;
mod environment;
mod error;
mod policy;
mod probe;
mod rds_settings;
mod redis;
mod resources;
mod shape;
mod validate;

pub use checks::{HealthSpec, HttpCheck, SqlHealthCheck};
pub use eks_settings::{EVERYONE, LOG_TYPES};
pub use environment::{EnvironmentSpec, spec_key};
pub use error::{Problem, SpecError};
pub use policy::{
    AlarmMapping, ApprovalPolicy, BackupPolicy, DEFAULT_APPROVAL_TIMEOUT_MINUTES,
    DEFAULT_ROLLBACK_WINDOW_MINUTES, DrillPlacement, DrillPolicy, RedisProbeSpec, RollbackPolicy,
};
pub use probe::{CredentialRef, ProbeSpec};
pub use redis::RedisSpec;
pub use resources::{
    AccessEntrySpec, AccessPolicySpec, AddonSpec, EksSpec, LaunchTemplateSpec, NodegroupSpec,
    RdsSpec, TaintSpec,
};
pub use validate::validate_environment_name;

#[cfg(test)]
mod tests;
