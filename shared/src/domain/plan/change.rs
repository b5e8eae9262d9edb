//! A plan's vocabulary: the resources it names, the changes it lists and the policy findings it raises.

use serde::{Deserialize, Serialize};

/// What a change or finding is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Resource {
    /// The environment as a whole (its spec).
    Environment {
        /// The environment.
        name: String,
    },
    /// An RDS instance.
    Instance {
        /// Its identifier.
        identifier: String,
    },
    /// An EKS cluster.
    Cluster {
        /// Its name.
        name: String,
    },
    /// An EKS managed node group.
    Nodegroup {
        /// Its cluster.
        cluster: String,
        /// Its name.
        name: String,
    },
    /// An EKS add-on.
    Addon {
        /// Its cluster.
        cluster: String,
        /// Its name.
        name: String,
    },
    /// An EKS access entry.
    AccessEntry {
        /// Its cluster.
        cluster: String,
        /// The IAM principal it admits.
        principal: String,
    },
    /// An ElastiCache Redis replication group.
    ReplicationGroup {
        /// Its id.
        id: String,
    },
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resource::Environment { name } => write!(f, "env:{name}"),
            Resource::Instance { identifier } => write!(f, "rds:{identifier}"),
            Resource::Cluster { name } => write!(f, "eks:{name}"),
            Resource::Nodegroup { cluster, name } => write!(f, "nodegroup:{cluster}/{name}"),
            Resource::Addon { cluster, name } => write!(f, "addon:{cluster}/{name}"),
            Resource::AccessEntry { cluster, principal } => {
                write!(f, "access:{cluster}/{principal}")
            }
            Resource::ReplicationGroup { id } => write!(f, "redis:{id}"),
        }
    }
}

/// The kind of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A resource that does not exist yet.
    Create,
    /// A setting of an existing resource.
    Modify,
    /// A node group's size.
    Scale,
    /// An engine or Kubernetes version.
    Upgrade,
}

impl ChangeKind {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Create => "create",
            ChangeKind::Modify => "modify",
            ChangeKind::Scale => "scale",
            ChangeKind::Upgrade => "upgrade",
        }
    }
}

/// One change of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// What it changes.
    pub resource: Resource,
    /// Its kind.
    pub kind: ChangeKind,
    /// The field (`instance_class`, `scaling`, `version`, ...; `resource` for a create).
    pub field: String,
    /// The value now (`None` for a create, or when AWS does not say).
    pub from: Option<String>,
    /// The value asked for.
    pub to: String,
    /// Whether a later apply can bring the old value back.
    pub reversible: bool,
    /// Why it is (or is not) reversible.
    pub reason: String,
}

/// One change of `resource`: the constructor the planner's parts share.
pub(super) fn change(
    resource: &Resource,
    kind: ChangeKind,
    field: &str,
    from: Option<String>,
    to: String,
    reversible: bool,
    reason: &str,
) -> Change {
    Change {
        resource: resource.clone(),
        kind,
        field: field.to_owned(),
        from,
        to,
        reversible,
        reason: reason.to_owned(),
    }
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Reported; the plan may still be applied.
    Warn,
    /// The plan must not be applied.
    Block,
}

/// A policy finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// `block` or `warn`.
    pub severity: Severity,
    /// What it is about.
    pub resource: Resource,
    /// The rule: `encryption`, `public-access`, `required-tag`, `storage-shrink`, `downgrade`,
    /// `cannot-create`, `instance-types`.
    pub rule: String,
    /// What is wrong and what to do.
    pub message: String,
}
