//! The planner: compares each resource the spec asks for with what exists, and lists the changes and findings.

use super::actual::{ActualCluster, ActualInstance, ActualNodegroup, ActualState};
use super::change::{Change, ChangeKind, Finding, Resource, Severity, change};
use super::outcome::Plan;
use super::policy::REQUIRED_TAGS;
use super::{eks_extensions, eks_settings, redis, settings};
use crate::domain::spec::{EksSpec, EnvironmentSpec, NodegroupSpec, RdsSpec};

/// The storage RDS allocates when the spec does not say (the smallest gp3 volume).
pub const DEFAULT_STORAGE_GB: u32 = 20;

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

struct Planner<'a> {
    spec: &'a EnvironmentSpec,
    changes: Vec<Change>,
    findings: Vec<Finding>,
}

impl Planner<'_> {
    /// A resource the spec names and AWS lacks: created, and blocked with `why_not` when creating it needs
    /// what the spec does not give (`lacking`).
    fn create(&mut self, r: &Resource, lacking: bool, why_not: &str, to: String, why: &str) {
        if lacking {
            self.finding(Severity::Block, r, "cannot-create", why_not.to_owned());
        }
        self.changes.push(change(
            r,
            ChangeKind::Create,
            "resource",
            None,
            to,
            true,
            why,
        ));
    }

    /// A setting the spec sets and the instance does not have: an in-place modification that can be
    /// changed back (`why` says how).
    fn reversible<T: PartialEq + std::fmt::Display>(
        &mut self,
        r: &Resource,
        field: &str,
        have: Option<T>,
        want: Option<T>,
        why: &str,
    ) {
        if let Some(want) = want
            && have.as_ref() != Some(&want)
        {
            self.changes.push(change(
                r,
                ChangeKind::Modify,
                field,
                shown(have),
                want.to_string(),
                true,
                why,
            ));
        }
    }

    /// A version that only goes forward: a newer one is an upgrade that cannot be undone (`why`), an older
    /// one a blocked downgrade of the `noun`.
    fn forward_only(
        &mut self,
        r: &Resource,
        field: &str,
        noun: &str,
        (have, want): (&str, &str),
        why: &str,
    ) {
        match compare_versions(have, want) {
            std::cmp::Ordering::Greater => self.changes.push(change(
                r,
                ChangeKind::Upgrade,
                field,
                Some(have.to_owned()),
                want.to_owned(),
                false,
                why,
            )),
            std::cmp::Ordering::Less => self.finding(
                Severity::Block,
                r,
                "downgrade",
                format!("{noun} {have} cannot be downgraded to {want}"),
            ),
            std::cmp::Ordering::Equal => {}
        }
    }

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
            if db.vpc_security_group_ids.is_empty() {
                self.finding(
                    Severity::Warn,
                    &r,
                    "security-groups",
                    "no security groups named: RDS puts the instance in its VPC's default group; name the groups that admit its clients in vpc_security_group_ids"
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

    fn protected_policy(&mut self) {
        if let Some(eks) = self.spec.eks.as_ref().filter(|_| self.spec.protected) {
            let r = Resource::Cluster {
                name: eks.cluster.clone(),
            };
            self.findings
                .extend(eks_settings::protected_endpoint(&r, eks));
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
        self.reversible(
            &r,
            "multi_az",
            a.multi_az,
            db.multi_az,
            "Multi-AZ can be switched back",
        );
        self.reversible(&r, "backup_retention_days", a.backup_retention_days, db.backup_retention_days, "retention can be set back (automated backups already dropped by a shorter one do not come back)");
        self.reversible(
            &r,
            "deletion_protection",
            a.deletion_protection,
            db.deletion_protection,
            "deletion protection can be switched back",
        );
        self.reversible(
            &r,
            "publicly_accessible",
            a.publicly_accessible,
            db.publicly_accessible,
            "public access can be switched back",
        );
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
            let why = if version_parts(want).first() != version_parts(have).first() {
                "an engine major version cannot go back"
            } else {
                "RDS cannot downgrade an engine, not even a minor version"
            };
            self.forward_only(&r, "engine_version", "engine version", (have, want), why);
        }
        let (changes, findings) = settings::plan(&r, db, &a.settings);
        self.changes.extend(changes);
        self.findings.extend(findings);
    }

    fn eks(&mut self, eks: &EksSpec, actual: Option<&ActualCluster>) {
        let r = Resource::Cluster {
            name: eks.cluster.clone(),
        };
        let version = eks.version.clone();
        match actual {
            None => {
                self.create(
                    &r,
                    eks.role_arn.is_none() || eks.subnet_ids.is_empty(),
                    "the cluster does not exist and cannot be created without eks.role_arn and eks.subnet_ids",
                    format!("kubernetes {}", version.as_deref().unwrap_or("default")),
                    "a new cluster: nothing that exists changes",
                );
            }
            Some(a) => {
                if let (Some(want), Some(have)) = (&version, &a.version) {
                    self.forward_only(
                        &r,
                        "version",
                        "cluster version",
                        (have, want),
                        "EKS cannot downgrade a cluster's Kubernetes version",
                    );
                }
                self.changes.extend(eks_settings::cluster(&r, eks, a));
            }
        }
        // A cluster yet to be created has none: each is created once it is ACTIVE.
        let none = ActualCluster::default();
        let (changes, findings) = eks_extensions::addons(eks, actual.unwrap_or(&none));
        self.changes.extend(changes);
        self.findings.extend(findings);
        self.changes
            .extend(eks_extensions::access_entries(eks, actual.unwrap_or(&none)));
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
            self.create(
                &r,
                eks.node_role_arn.is_none() || eks.subnet_ids.is_empty(),
                "the node group does not exist and cannot be created without eks.node_role_arn and eks.subnet_ids",
                format!(
                    "{} {}",
                    ng.instance_types.join(","),
                    scaling_text(ng.min, ng.max, ng.desired)
                ),
                "a new node group: nothing that exists changes",
            );
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
        let (changes, findings) = eks_settings::nodegroup(&r, ng, a);
        self.changes.extend(changes);
        self.findings.extend(findings);
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
    p.protected_policy();
    for db in &spec.rds {
        p.instance(db, actual.instance(&db.identifier));
    }
    if let Some(eks) = &spec.eks {
        let cluster = actual.cluster.as_ref().filter(|c| c.name == eks.cluster);
        p.eks(eks, cluster);
    }
    for group in &spec.redis {
        let have = actual.replication_group(&group.replication_group_id);
        let (changes, findings) = redis::plan(group, have, spec.protected);
        p.changes.extend(changes);
        p.findings.extend(findings);
    }
    Plan::new(
        &spec.environment,
        p.changes,
        p.findings,
        spec.approval.required,
    )
}
