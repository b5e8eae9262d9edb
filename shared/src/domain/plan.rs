//! The plan: what it takes to bring what RDS and EKS describe to what the spec asks, and whether it may.
//!
//! [`plan`] is pure: it compares an [`EnvironmentSpec`] with an [`ActualState`] (built by the adapters from
//! `DescribeDBInstances`, `DescribeCluster` and `DescribeNodegroup`) and lists the [`Change`]s (create,
//! modify, scale, upgrade), each marked reversible or not with the reason, and the policy [`Finding`]s. A
//! plan with a `block` finding is never applied; one with an irreversible change, or from a spec that asks
//! for approval, waits for a person. [`existing_findings`] applies the same policy to what exists now, which
//! is how drift detection sees an instance made public behind opsplane's back.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::spec::{EksSpec, EnvironmentSpec, NodegroupSpec, RdsSpec};

/// Tags every resource must carry; a missing one is a `warn` finding.
pub const REQUIRED_TAGS: [&str; 3] = ["Project", "Environment", "ManagedBy"];
/// The storage RDS allocates when the spec does not say (the smallest gp3 volume).
pub const DEFAULT_STORAGE_GB: u32 = 20;

/// An RDS instance as described.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ActualInstance {
    /// Identifier.
    pub identifier: String,
    /// Status (`available`, `modifying`, `failed`, ...).
    pub status: String,
    /// Instance class.
    pub instance_class: String,
    /// Engine.
    pub engine: String,
    /// Engine version.
    pub engine_version: Option<String>,
    /// Allocated storage, GiB.
    pub allocated_storage_gb: Option<u32>,
    /// Multi-AZ.
    pub multi_az: Option<bool>,
    /// Automated backup retention, days.
    pub backup_retention_days: Option<u32>,
    /// Deletion protection.
    pub deletion_protection: Option<bool>,
    /// Storage encryption.
    pub storage_encrypted: Option<bool>,
    /// Public accessibility.
    pub publicly_accessible: Option<bool>,
    /// Changes RDS has accepted but not applied yet (field names as RDS spells them).
    #[serde(default)]
    pub pending: Vec<String>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// An EKS managed node group as described.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ActualNodegroup {
    /// Name.
    pub name: String,
    /// Status (`ACTIVE`, `UPDATING`, `DEGRADED`, ...).
    pub status: String,
    /// Kubernetes version.
    pub version: Option<String>,
    /// Instance types.
    #[serde(default)]
    pub instance_types: Vec<String>,
    /// Minimum size.
    pub min: Option<u32>,
    /// Maximum size.
    pub max: Option<u32>,
    /// Desired size.
    pub desired: Option<u32>,
    /// Health issues EKS reports (`code: message`).
    #[serde(default)]
    pub health_issues: Vec<String>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// An EKS cluster as described, with its node groups.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ActualCluster {
    /// Name.
    pub name: String,
    /// Status (`ACTIVE`, `UPDATING`, `FAILED`, ...).
    pub status: String,
    /// Kubernetes version.
    pub version: Option<String>,
    /// Health issues EKS reports.
    #[serde(default)]
    pub health_issues: Vec<String>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Node groups.
    #[serde(default)]
    pub nodegroups: Vec<ActualNodegroup>,
}

/// What exists of an environment: the instances and cluster its spec names (absent ones are missing).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ActualState {
    /// The RDS instances that exist.
    #[serde(default)]
    pub instances: Vec<ActualInstance>,
    /// The EKS cluster, when it exists.
    #[serde(default)]
    pub cluster: Option<ActualCluster>,
}

impl ActualState {
    /// The instance of that identifier.
    pub fn instance(&self, identifier: &str) -> Option<&ActualInstance> {
        self.instances.iter().find(|i| i.identifier == identifier)
    }
}

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
}

impl std::fmt::Display for Resource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resource::Environment { name } => write!(f, "env:{name}"),
            Resource::Instance { identifier } => write!(f, "rds:{identifier}"),
            Resource::Cluster { name } => write!(f, "eks:{name}"),
            Resource::Nodegroup { cluster, name } => write!(f, "nodegroup:{cluster}/{name}"),
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
    fn as_str(self) -> &'static str {
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

/// The plan of one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The environment.
    pub environment: String,
    /// The changes, in the order they are applied (clusters before their node groups).
    pub changes: Vec<Change>,
    /// The policy findings.
    pub findings: Vec<Finding>,
    /// Whether a `block` finding forbids applying it.
    pub blocked: bool,
    /// Whether it waits for a person (the spec asks, or a change is irreversible).
    pub needs_approval: bool,
    /// Whether there is nothing to change.
    pub empty: bool,
}

impl Plan {
    fn new(
        environment: &str,
        changes: Vec<Change>,
        findings: Vec<Finding>,
        approval: bool,
    ) -> Self {
        let blocked = findings.iter().any(|f| f.severity == Severity::Block);
        let empty = changes.is_empty();
        let needs_approval = !empty && (approval || changes.iter().any(|c| !c.reversible));
        Self {
            environment: environment.to_owned(),
            changes,
            findings,
            blocked,
            needs_approval,
            empty,
        }
    }

    /// The blocking findings.
    pub fn blocking(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Block)
    }

    /// The identifiers of the existing RDS instances the plan changes (they get a pre-change snapshot).
    pub fn instances_changed(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .changes
            .iter()
            .filter(|c| c.kind != ChangeKind::Create)
            .filter_map(|c| match &c.resource {
                Resource::Instance { identifier } => Some(identifier.clone()),
                _ => None,
            })
            .collect();
        ids.dedup();
        ids
    }

    /// The part of this plan a revert may apply: the reversible changes. Irreversible ones (an upgrade, a
    /// storage grow) stay, and are listed in the second value; findings about them do not block a revert,
    /// which only ever goes back to a spec that was applied and healthy.
    pub fn revertible(self) -> (Plan, Vec<Change>) {
        let (keep, skipped): (Vec<Change>, Vec<Change>) =
            self.changes.into_iter().partition(|c| c.reversible);
        let findings = self
            .findings
            .into_iter()
            .filter(|f| f.severity == Severity::Warn)
            .collect();
        (Plan::new(&self.environment, keep, findings, false), skipped)
    }

    /// A short table for people.
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        let warnings = self
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Warn)
            .count();
        let _ = writeln!(
            out,
            "plan for {}: {} change(s), {} blocking finding(s), {} warning(s){}",
            self.environment,
            self.changes.len(),
            self.blocking().count(),
            warnings,
            if self.blocked {
                " - BLOCKED, will not be applied"
            } else if self.empty {
                " - nothing to do"
            } else if self.needs_approval {
                " - needs approval"
            } else {
                ""
            }
        );
        if !self.changes.is_empty() {
            let rows: Vec<[String; 5]> = self
                .changes
                .iter()
                .map(|c| {
                    [
                        c.kind.as_str().to_owned(),
                        c.resource.to_string(),
                        c.field.clone(),
                        format!("{} -> {}", c.from.as_deref().unwrap_or("-"), c.to),
                        if c.reversible { "yes" } else { "NO" }.to_owned(),
                    ]
                })
                .collect();
            let header = ["KIND", "RESOURCE", "FIELD", "CHANGE", "REVERSIBLE"];
            let mut widths = header.map(str::len);
            for row in &rows {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.len());
                }
            }
            let mut line = |cells: [&str; 5]| {
                let mut l = String::from(" ");
                for (cell, w) in cells.iter().zip(widths) {
                    let _ = write!(l, " {cell:<w$}");
                }
                let _ = writeln!(out, "{}", l.trim_end());
            };
            line(header);
            for row in &rows {
                line([&row[0], &row[1], &row[2], &row[3], &row[4]]);
            }
        }
        for f in &self.findings {
            let sev = match f.severity {
                Severity::Block => "BLOCK",
                Severity::Warn => "warn ",
            };
            let _ = writeln!(out, "  {sev} {} [{}] {}", f.resource, f.rule, f.message);
        }
        out
    }
}

fn version_parts(v: &str) -> Vec<u64> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

/// How `to` relates to `from`: `Some(Ordering)` when both parse.
fn compare_versions(from: &str, to: &str) -> std::cmp::Ordering {
    version_parts(to).cmp(&version_parts(from))
}

fn shown<T: std::fmt::Display>(v: Option<T>) -> Option<String> {
    v.map(|v| v.to_string())
}

fn change(
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

struct Planner<'a> {
    spec: &'a EnvironmentSpec,
    changes: Vec<Change>,
    findings: Vec<Finding>,
}

impl Planner<'_> {
    fn finding(&mut self, severity: Severity, resource: &Resource, rule: &str, message: String) {
        self.findings.push(Finding {
            severity,
            resource: resource.clone(),
            rule: rule.to_owned(),
            message,
        });
    }

    fn desired_policy(&mut self) {
        let env = Resource::Environment {
            name: self.spec.environment.clone(),
        };
        for tag in REQUIRED_TAGS {
            if !self.spec.tags.contains_key(tag) {
                self.finding(
                    Severity::Warn,
                    &env,
                    "required-tag",
                    format!("the spec's tags lack `{tag}`; every resource should carry Project, Environment and ManagedBy"),
                );
            }
        }
        for db in &self.spec.rds {
            let r = Resource::Instance {
                identifier: db.identifier.clone(),
            };
            if db.storage_encrypted != Some(true) {
                self.finding(
                    Severity::Block,
                    &r,
                    "encryption",
                    "storage is not encrypted: set storage_encrypted: true (RDS cannot encrypt an instance later)"
                        .into(),
                );
            }
            if db.publicly_accessible == Some(true) {
                self.finding(
                    Severity::Block,
                    &r,
                    "public-access",
                    "the instance would be publicly accessible: set publicly_accessible: false"
                        .into(),
                );
            }
        }
    }

    fn instance(&mut self, db: &RdsSpec, actual: Option<&ActualInstance>) {
        let r = Resource::Instance {
            identifier: db.identifier.clone(),
        };
        let Some(a) = actual else {
            self.changes.push(change(
                &r,
                ChangeKind::Create,
                "resource",
                None,
                format!(
                    "{} {} {} GiB",
                    db.instance_class,
                    db.engine_version.as_deref().unwrap_or(&db.engine),
                    db.allocated_storage_gb.unwrap_or(DEFAULT_STORAGE_GB)
                ),
                true,
                "a new instance: nothing that exists changes",
            ));
            return;
        };
        if a.storage_encrypted == Some(false) && db.storage_encrypted == Some(true) {
            self.finding(
                Severity::Block,
                &r,
                "encryption",
                "the existing instance is not encrypted and RDS cannot encrypt it in place: restore an encrypted copy of a snapshot"
                    .into(),
            );
        }
        if a.instance_class != db.instance_class {
            self.changes.push(change(
                &r,
                ChangeKind::Modify,
                "instance_class",
                Some(a.instance_class.clone()),
                db.instance_class.clone(),
                true,
                "an instance class can be changed back",
            ));
        }
        if let Some(want) = db.multi_az
            && a.multi_az != Some(want)
        {
            self.changes.push(change(
                &r,
                ChangeKind::Modify,
                "multi_az",
                shown(a.multi_az),
                want.to_string(),
                true,
                "Multi-AZ can be switched back",
            ));
        }
        if let Some(want) = db.backup_retention_days
            && a.backup_retention_days != Some(want)
        {
            self.changes.push(change(
                &r,
                ChangeKind::Modify,
                "backup_retention_days",
                shown(a.backup_retention_days),
                want.to_string(),
                true,
                "retention can be set back (automated backups already dropped by a shorter one do not come back)",
            ));
        }
        if let Some(want) = db.deletion_protection
            && a.deletion_protection != Some(want)
        {
            self.changes.push(change(
                &r,
                ChangeKind::Modify,
                "deletion_protection",
                shown(a.deletion_protection),
                want.to_string(),
                true,
                "deletion protection can be switched back",
            ));
        }
        if let Some(want) = db.publicly_accessible
            && a.publicly_accessible != Some(want)
        {
            self.changes.push(change(
                &r,
                ChangeKind::Modify,
                "publicly_accessible",
                shown(a.publicly_accessible),
                want.to_string(),
                true,
                "public access can be switched back",
            ));
        }
        if let (Some(want), Some(have)) = (db.allocated_storage_gb, a.allocated_storage_gb) {
            if want > have {
                self.changes.push(change(
                    &r,
                    ChangeKind::Modify,
                    "allocated_storage_gb",
                    Some(have.to_string()),
                    want.to_string(),
                    false,
                    "allocated storage cannot shrink back",
                ));
            } else if want < have {
                self.finding(
                    Severity::Block,
                    &r,
                    "storage-shrink",
                    format!("allocated storage cannot shrink from {have} to {want} GiB: keep {have} or more"),
                );
            }
        }
        if let (Some(want), Some(have)) = (&db.engine_version, &a.engine_version) {
            match compare_versions(have, want) {
                std::cmp::Ordering::Greater => {
                    let major = version_parts(want).first() != version_parts(have).first();
                    self.changes.push(change(
                        &r,
                        ChangeKind::Upgrade,
                        "engine_version",
                        Some(have.clone()),
                        want.clone(),
                        false,
                        if major {
                            "an engine major version cannot go back"
                        } else {
                            "RDS cannot downgrade an engine, not even a minor version"
                        },
                    ));
                }
                std::cmp::Ordering::Less => self.finding(
                    Severity::Block,
                    &r,
                    "downgrade",
                    format!("engine version {have} cannot be downgraded to {want}"),
                ),
                std::cmp::Ordering::Equal => {}
            }
        }
    }

    fn eks(&mut self, eks: &EksSpec, actual: Option<&ActualCluster>) {
        let r = Resource::Cluster {
            name: eks.cluster.clone(),
        };
        let version = eks.version.clone();
        match actual {
            None => {
                if eks.role_arn.is_none() || eks.subnet_ids.is_empty() {
                    self.finding(
                        Severity::Block,
                        &r,
                        "cannot-create",
                        "the cluster does not exist and cannot be created without eks.role_arn and eks.subnet_ids"
                            .into(),
                    );
                }
                self.changes.push(change(
                    &r,
                    ChangeKind::Create,
                    "resource",
                    None,
                    format!("kubernetes {}", version.as_deref().unwrap_or("default")),
                    true,
                    "a new cluster: nothing that exists changes",
                ));
            }
            Some(a) => {
                if let (Some(want), Some(have)) = (&version, &a.version) {
                    match compare_versions(have, want) {
                        std::cmp::Ordering::Greater => self.changes.push(change(
                            &r,
                            ChangeKind::Upgrade,
                            "version",
                            Some(have.clone()),
                            want.clone(),
                            false,
                            "EKS cannot downgrade a cluster's Kubernetes version",
                        )),
                        std::cmp::Ordering::Less => self.finding(
                            Severity::Block,
                            &r,
                            "downgrade",
                            format!("cluster version {have} cannot be downgraded to {want}"),
                        ),
                        std::cmp::Ordering::Equal => {}
                    }
                }
            }
        }
        for ng in &eks.nodegroups {
            let existing = actual.and_then(|c| c.nodegroups.iter().find(|n| n.name == ng.name));
            self.nodegroup(eks, ng, existing);
        }
    }

    fn nodegroup(&mut self, eks: &EksSpec, ng: &NodegroupSpec, actual: Option<&ActualNodegroup>) {
        let r = Resource::Nodegroup {
            cluster: eks.cluster.clone(),
            name: ng.name.clone(),
        };
        let Some(a) = actual else {
            if eks.node_role_arn.is_none() || eks.subnet_ids.is_empty() {
                self.finding(
                    Severity::Block,
                    &r,
                    "cannot-create",
                    "the node group does not exist and cannot be created without eks.node_role_arn and eks.subnet_ids"
                        .into(),
                );
            }
            self.changes.push(change(
                &r,
                ChangeKind::Create,
                "resource",
                None,
                format!(
                    "{} {}",
                    ng.instance_types.join(","),
                    scaling_text(ng.min, ng.max, ng.desired)
                ),
                true,
                "a new node group: nothing that exists changes",
            ));
            return;
        };
        if !ng.instance_types.is_empty() && ng.instance_types != a.instance_types {
            self.finding(
                Severity::Warn,
                &r,
                "instance-types",
                format!(
                    "instance types are {} but the spec asks {}: a managed node group cannot change them in place; create a new node group",
                    a.instance_types.join(","),
                    ng.instance_types.join(",")
                ),
            );
        }
        let want = (ng.min.or(a.min), ng.max.or(a.max), ng.desired.or(a.desired));
        if want != (a.min, a.max, a.desired) {
            self.changes.push(change(
                &r,
                ChangeKind::Scale,
                "scaling",
                Some(scaling_text(a.min, a.max, a.desired)),
                scaling_text(want.0, want.1, want.2),
                true,
                "a node group can be scaled back",
            ));
        }
        if let (Some(want), Some(have)) = (&eks.version, &a.version)
            && compare_versions(have, want) == std::cmp::Ordering::Greater
        {
            self.changes.push(change(
                &r,
                ChangeKind::Upgrade,
                "version",
                Some(have.clone()),
                want.clone(),
                false,
                "a node group's Kubernetes version cannot go back",
            ));
        }
    }
}

/// `min/max/desired`, `-` for unknown.
pub fn scaling_text(min: Option<u32>, max: Option<u32>, desired: Option<u32>) -> String {
    let s = |v: Option<u32>| v.map_or("-".to_owned(), |v| v.to_string());
    format!("min {} max {} desired {}", s(min), s(max), s(desired))
}

/// The plan that brings `actual` to `spec`.
pub fn plan(spec: &EnvironmentSpec, actual: &ActualState) -> Plan {
    let mut p = Planner {
        spec,
        changes: Vec::new(),
        findings: Vec::new(),
    };
    p.desired_policy();
    for db in &spec.rds {
        p.instance(db, actual.instance(&db.identifier));
    }
    if let Some(eks) = &spec.eks {
        let cluster = actual.cluster.as_ref().filter(|c| c.name == eks.cluster);
        p.eks(eks, cluster);
    }
    Plan::new(
        &spec.environment,
        p.changes,
        p.findings,
        spec.approval.required,
    )
}

/// The policy applied to what exists now: unencrypted or public instances block, missing tags warn.
pub fn existing_findings(actual: &ActualState) -> Vec<Finding> {
    let mut out = Vec::new();
    let missing = |tags: &BTreeMap<String, String>| -> Vec<&str> {
        REQUIRED_TAGS
            .into_iter()
            .filter(|t| !tags.contains_key(*t))
            .collect()
    };
    for a in &actual.instances {
        let r = Resource::Instance {
            identifier: a.identifier.clone(),
        };
        if a.storage_encrypted == Some(false) {
            out.push(Finding {
                severity: Severity::Block,
                resource: r.clone(),
                rule: "encryption".into(),
                message: "the instance's storage is not encrypted".into(),
            });
        }
        if a.publicly_accessible == Some(true) {
            out.push(Finding {
                severity: Severity::Block,
                resource: r.clone(),
                rule: "public-access".into(),
                message: "the instance is publicly accessible".into(),
            });
        }
        let lacking = missing(&a.tags);
        if !lacking.is_empty() {
            out.push(Finding {
                severity: Severity::Warn,
                resource: r,
                rule: "required-tag".into(),
                message: format!("missing tags: {}", lacking.join(", ")),
            });
        }
    }
    if let Some(c) = &actual.cluster {
        let lacking = missing(&c.tags);
        if !lacking.is_empty() {
            out.push(Finding {
                severity: Severity::Warn,
                resource: Resource::Cluster {
                    name: c.name.clone(),
                },
                rule: "required-tag".into(),
                message: format!("missing tags: {}", lacking.join(", ")),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> EnvironmentSpec {
        let doc = format!(
            r#"
environment: staging
tags: {{ Project: acme, Environment: staging, ManagedBy: opsplane }}
rds:
  - {{ identifier: acme-db, engine: postgres, engine_version: "16.4", instance_class: db.t4g.medium,
      allocated_storage_gb: 100, multi_az: true, backup_retention_days: 14, deletion_protection: true,
      storage_encrypted: true, publicly_accessible: false }}
eks:
  cluster: acme
  version: "1.30"
  role_arn: arn:aws:iam::1:role/eks
  node_role_arn: arn:aws:iam::1:role/node
  subnet_ids: [subnet-a]
  nodegroups:
    - {{ name: general, instance_types: [t3.medium], min: 2, max: 10, desired: 3 }}
{extra}"#
        );
        EnvironmentSpec::parse(&doc).unwrap()
    }

    fn matching(spec: &EnvironmentSpec) -> ActualState {
        let db = &spec.rds[0];
        let eks = spec.eks.as_ref().unwrap();
        let ng = &eks.nodegroups[0];
        ActualState {
            instances: vec![ActualInstance {
                identifier: db.identifier.clone(),
                status: "available".into(),
                instance_class: db.instance_class.clone(),
                engine: "postgres".into(),
                engine_version: db.engine_version.clone(),
                allocated_storage_gb: db.allocated_storage_gb,
                multi_az: db.multi_az,
                backup_retention_days: db.backup_retention_days,
                deletion_protection: db.deletion_protection,
                storage_encrypted: Some(true),
                publicly_accessible: Some(false),
                pending: vec![],
                tags: spec.tags.clone(),
            }],
            cluster: Some(ActualCluster {
                name: eks.cluster.clone(),
                status: "ACTIVE".into(),
                version: eks.version.clone(),
                health_issues: vec![],
                tags: spec.tags.clone(),
                nodegroups: vec![ActualNodegroup {
                    name: ng.name.clone(),
                    status: "ACTIVE".into(),
                    version: eks.version.clone(),
                    instance_types: ng.instance_types.clone(),
                    min: ng.min,
                    max: ng.max,
                    desired: ng.desired,
                    health_issues: vec![],
                    tags: spec.tags.clone(),
                }],
            }),
        }
    }

    fn only_change(p: &Plan) -> &Change {
        assert_eq!(p.changes.len(), 1, "{:#?}", p.changes);
        &p.changes[0]
    }

    #[test]
    fn a_matching_world_plans_nothing() {
        let s = spec("");
        let p = plan(&s, &matching(&s));
        assert!(p.empty && !p.blocked && !p.needs_approval, "{p:#?}");
        assert!(p.findings.is_empty());
        assert!(p.render_table().contains("nothing to do"));
        assert!(existing_findings(&matching(&s)).is_empty());
    }

    #[test]
    fn nothing_exists_creates_everything_in_order() {
        let s = spec("");
        let p = plan(&s, &ActualState::default());
        let kinds: Vec<_> = p
            .changes
            .iter()
            .map(|c| (c.kind, c.resource.to_string()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (ChangeKind::Create, "rds:acme-db".to_owned()),
                (ChangeKind::Create, "eks:acme".to_owned()),
                (ChangeKind::Create, "nodegroup:acme/general".to_owned()),
            ]
        );
        assert!(p.changes.iter().all(|c| c.reversible));
        assert!(!p.needs_approval && !p.blocked);
        // Nothing existing changes, so nothing needs a pre-change snapshot.
        assert!(p.instances_changed().is_empty());
    }

    #[test]
    fn instance_class_is_a_reversible_modify() {
        let s = spec("");
        let mut a = matching(&s);
        a.instances[0].instance_class = "db.t4g.small".into();
        let p = plan(&s, &a);
        let c = only_change(&p);
        assert_eq!(
            (c.kind, c.field.as_str()),
            (ChangeKind::Modify, "instance_class")
        );
        assert_eq!(c.from.as_deref(), Some("db.t4g.small"));
        assert_eq!(c.to, "db.t4g.medium");
        assert!(c.reversible);
        assert!(!p.needs_approval);
        assert_eq!(p.instances_changed(), vec!["acme-db".to_owned()]);
    }

    #[test]
    fn every_modifiable_setting_is_planned() {
        let s = spec("");
        let mut a = matching(&s);
        let i = &mut a.instances[0];
        i.multi_az = Some(false);
        i.backup_retention_days = Some(7);
        i.deletion_protection = Some(false);
        i.publicly_accessible = Some(true);
        let p = plan(&s, &a);
        let fields: Vec<_> = p.changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "multi_az",
                "backup_retention_days",
                "deletion_protection",
                "publicly_accessible"
            ]
        );
        assert!(
            p.changes
                .iter()
                .all(|c| c.reversible && c.kind == ChangeKind::Modify)
        );
    }

    #[test]
    fn storage_grows_irreversibly_and_never_shrinks() {
        let s = spec("");
        let mut a = matching(&s);
        a.instances[0].allocated_storage_gb = Some(50);
        let p = plan(&s, &a);
        let c = only_change(&p);
        assert!(!c.reversible);
        assert!(c.reason.contains("cannot shrink"));
        assert!(
            p.needs_approval,
            "an irreversible change waits for approval"
        );

        a.instances[0].allocated_storage_gb = Some(200);
        let p = plan(&s, &a);
        assert!(p.changes.is_empty());
        assert!(p.blocked);
        assert_eq!(p.blocking().next().unwrap().rule, "storage-shrink");
    }

    #[test]
    fn engine_upgrades_are_irreversible_and_downgrades_block() {
        let s = spec("");
        let mut a = matching(&s);
        a.instances[0].engine_version = Some("15.7".into());
        let p = plan(&s, &a);
        let c = only_change(&p);
        assert_eq!(c.kind, ChangeKind::Upgrade);
        assert!(!c.reversible && c.reason.contains("major"));
        assert!(p.needs_approval);

        a.instances[0].engine_version = Some("16.2".into());
        let c = only_change(&plan(&s, &a)).clone();
        assert!(!c.reversible && c.reason.contains("minor"));

        a.instances[0].engine_version = Some("16.10".into());
        let p = plan(&s, &a);
        assert!(p.blocked && p.changes.is_empty());
        assert_eq!(p.blocking().next().unwrap().rule, "downgrade");
    }

    #[test]
    fn unencrypted_or_public_specs_block() {
        let s = EnvironmentSpec::parse(
            "environment: dev\nrds:\n  - { identifier: d-db, engine: postgres, instance_class: db.t4g.micro }\n",
        )
        .unwrap();
        let p = plan(&s, &ActualState::default());
        assert!(p.blocked);
        let rules: Vec<_> = p.blocking().map(|f| f.rule.as_str()).collect();
        assert_eq!(rules, ["encryption"]);
        // The tags are missing too: three warnings, which alone would not block.
        assert_eq!(
            p.findings
                .iter()
                .filter(|f| f.severity == Severity::Warn)
                .count(),
            3
        );

        let public = EnvironmentSpec::parse(
            "environment: dev\nrds:\n  - { identifier: d-db, engine: postgres, instance_class: db.t4g.micro, storage_encrypted: true, publicly_accessible: true }\n",
        )
        .unwrap();
        let p = plan(&public, &ActualState::default());
        let rules: Vec<_> = p.blocking().map(|f| f.rule.as_str()).collect();
        assert_eq!(rules, ["public-access"]);
        assert!(p.render_table().contains("BLOCKED"));
    }

    #[test]
    fn an_existing_unencrypted_instance_cannot_be_fixed_in_place() {
        let s = spec("");
        let mut a = matching(&s);
        a.instances[0].storage_encrypted = Some(false);
        let p = plan(&s, &a);
        assert!(p.blocked);
        assert!(existing_findings(&a).iter().any(|f| f.rule == "encryption"));
    }

    #[test]
    fn missing_tags_warn_but_do_not_block() {
        let s = EnvironmentSpec::parse(
            "environment: dev\ntags: { Project: acme }\nrds:\n  - { identifier: d-db, engine: postgres, instance_class: db.t4g.micro, storage_encrypted: true }\n",
        )
        .unwrap();
        let p = plan(&s, &ActualState::default());
        assert!(!p.blocked);
        let missing: Vec<_> = p
            .findings
            .iter()
            .map(|f| {
                (
                    f.severity,
                    f.message.contains("Environment") || f.message.contains("ManagedBy"),
                )
            })
            .collect();
        assert_eq!(missing, [(Severity::Warn, true), (Severity::Warn, true)]);
    }

    #[test]
    fn approval_required_by_the_spec_only_when_something_changes() {
        let s = spec("approval: { required: true }\n");
        assert!(!plan(&s, &matching(&s)).needs_approval);
        let mut a = matching(&s);
        a.instances[0].instance_class = "db.t4g.large".into();
        assert!(plan(&s, &a).needs_approval);
    }

    #[test]
    fn nodegroups_scale_reversibly_and_upgrade_irreversibly() {
        let s = spec("");
        let mut a = matching(&s);
        a.cluster.as_mut().unwrap().nodegroups[0].desired = Some(5);
        let p = plan(&s, &a);
        let c = only_change(&p);
        assert_eq!(c.kind, ChangeKind::Scale);
        assert_eq!(c.from.as_deref(), Some("min 2 max 10 desired 5"));
        assert_eq!(c.to, "min 2 max 10 desired 3");
        assert!(c.reversible);

        let mut a = matching(&s);
        let cluster = a.cluster.as_mut().unwrap();
        cluster.version = Some("1.29".into());
        cluster.nodegroups[0].version = Some("1.29".into());
        let p = plan(&s, &a);
        let kinds: Vec<_> = p
            .changes
            .iter()
            .map(|c| (c.kind, c.resource.to_string(), c.reversible))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (ChangeKind::Upgrade, "eks:acme".to_owned(), false),
                (
                    ChangeKind::Upgrade,
                    "nodegroup:acme/general".to_owned(),
                    false
                ),
            ]
        );
        assert!(p.needs_approval);

        let mut a = matching(&s);
        a.cluster.as_mut().unwrap().version = Some("1.31".into());
        assert_eq!(plan(&s, &a).blocking().next().unwrap().rule, "downgrade");
    }

    #[test]
    fn creating_eks_without_roles_or_subnets_blocks() {
        let s = EnvironmentSpec::parse(
            "environment: dev\neks: { cluster: c, nodegroups: [ { name: g, min: 1, max: 2, desired: 1 } ] }\n",
        )
        .unwrap();
        let p = plan(&s, &ActualState::default());
        let blocked: Vec<_> = p.blocking().map(|f| f.resource.to_string()).collect();
        assert_eq!(blocked, ["eks:c", "nodegroup:c/g"]);
    }

    #[test]
    fn changed_instance_types_warn() {
        let s = spec("");
        let mut a = matching(&s);
        a.cluster.as_mut().unwrap().nodegroups[0].instance_types = vec!["m5.large".into()];
        let p = plan(&s, &a);
        assert!(p.changes.is_empty() && !p.blocked);
        assert_eq!(p.findings[0].rule, "instance-types");
    }

    #[test]
    fn a_revert_applies_only_reversible_changes() {
        let s = spec("");
        let mut a = matching(&s);
        a.instances[0].instance_class = "db.t4g.large".into();
        a.instances[0].allocated_storage_gb = Some(50);
        let (revert, skipped) = plan(&s, &a).revertible();
        assert_eq!(revert.changes.len(), 1);
        assert_eq!(revert.changes[0].field, "instance_class");
        assert!(!revert.needs_approval && !revert.blocked);
        assert_eq!(skipped[0].field, "allocated_storage_gb");
    }

    #[test]
    fn plans_round_trip_through_json_and_render_a_table() {
        let s = spec("");
        let mut a = matching(&s);
        a.instances[0].instance_class = "db.t4g.small".into();
        let p = plan(&s, &a);
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["changes"][0]["resource"]["type"], "instance");
        assert_eq!(json["changes"][0]["kind"], "modify");
        let back: Plan = serde_json::from_value(json).unwrap();
        assert_eq!(back, p);
        let table = p.render_table();
        assert!(table.contains("KIND"), "{table}");
        assert!(table.contains("rds:acme-db"), "{table}");
        assert!(table.contains("db.t4g.small -> db.t4g.medium"), "{table}");
    }

    #[test]
    fn existing_public_instances_and_untagged_resources_are_found() {
        let s = spec("");
        let mut a = matching(&s);
        a.instances[0].publicly_accessible = Some(true);
        a.cluster.as_mut().unwrap().tags.clear();
        let f = existing_findings(&a);
        let rules: Vec<_> = f.iter().map(|f| (f.severity, f.rule.as_str())).collect();
        assert_eq!(
            rules,
            [
                (Severity::Block, "public-access"),
                (Severity::Warn, "required-tag")
            ]
        );
    }
}
