//! The plan: what it takes to bring what RDS and EKS describe to what the spec asks, and whether it may.
//!
//! [`plan`] is pure: it compares an [`EnvironmentSpec`] with an [`ActualState`] (built by the adapters from
//! `DescribeDBInstances`, `DescribeCluster` and `DescribeNodegroup`) and lists the [`Change`]s (create,
//! modify, scale, upgrade), each marked reversible or not with the reason, and the policy [`Finding`]s. A
//! plan with a `block` finding is never applied; one with an irreversible change, or from a spec that asks
//! for approval, waits for a person. [`existing_findings`] applies the same policy to what exists now, which
//! is how drift detection sees an instance made public behind opsplane's back.
//!
//! What exists is in `actual`, the plan's vocabulary in `change`, the plan as a whole in `outcome`, the
//! comparison in `planner` (an instance's placement, storage and maintenance settings in `settings`, the cluster's and node
//! groups' in `eks_settings`) and the
//! policy on what exists in `policy`; everything is re-exported here.

mod actual;
mod change;
mod eks_extensions;
mod eks_settings;
mod outcome;
mod planner;
mod policy;
mod redis;
mod settings;

pub use actual::{
    ActualAccessEntry, ActualAddon, ActualCluster, ActualInstance, ActualNodegroup,
    ActualReplicationGroup, ActualState, InstanceSettings,
};
pub use change::{Change, ChangeKind, Finding, Resource, Severity};
pub use outcome::{Plan, changes_sha256};
pub use planner::{DEFAULT_STORAGE_GB, plan, scaling_text};
pub use policy::{REQUIRED_TAGS, existing_findings};

#[cfg(test)]
mod tests;
