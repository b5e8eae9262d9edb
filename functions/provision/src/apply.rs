//! Changing the world: pre-change snapshots, apply, convergence and the revert to the last known good.
//!
//! Apply only ever carries out changes of an approved plan (matched by resource and field against a fresh
//! plan, so a retried call does nothing twice), and each mutation call is preceded by a fence check with
//! the lock's token. The same path applies a deployment and reverts one.

use std::collections::{BTreeMap, BTreeSet};

use opsplane_shared::OpsError;
use opsplane_shared::aws::eks::NetworkPart;
use opsplane_shared::aws::observe::observe;
use opsplane_shared::aws::rds::InstanceModification;
use opsplane_shared::domain::backup::{MANAGED_BY_VALUE, TAG_ENVIRONMENT, TAG_MANAGED_BY};
use opsplane_shared::domain::plan::{ActualState, Change, ChangeKind, Plan, Resource, plan};
use opsplane_shared::domain::spec::EnvironmentSpec;
use opsplane_shared::lock::{HeldLock, renew_held};
use serde::{Deserialize, Serialize};

use crate::{Deps, TAG_DEPLOYMENT, resource_tags};

/// `snapshot`: the plan about to be applied.
#[derive(Debug, Deserialize)]
pub struct SnapshotInput {
    /// The environment.
    pub environment: String,
    /// The deployment's id.
    pub deployment_id: String,
    /// The plan, as approved (or as planned, when no approval was needed).
    pub plan: Plan,
    /// The spec version planned: the plan is computed again from it and what exists before anything
    /// changes, and must be the one approved.
    #[serde(default)]
    pub spec_version: Option<String>,
    /// The lock, renewed at the start of every call ([`HeldLock`]).
    #[serde(default)]
    pub lock: Option<HeldLock>,
}

/// Computes the plan again from `version` and what exists now: `PlanChanged` unless it is `approved` (the
/// environment changed while the approval waited, so what would be applied is not what was approved).
async fn confirm_plan(
    deps: &Deps,
    environment: &str,
    version: &str,
    approved: &Plan,
) -> Result<(), OpsError> {
    let stored = deps.spec(environment, Some(version)).await?;
    let actual = observe((&deps.rds, &deps.eks, &deps.caches), &stored.spec).await?;
    let now = plan(&stored.spec, &actual);
    if now.sha256() == approved.sha256() {
        return Ok(());
    }
    let lines = |p: &Plan| {
        p.changes
            .iter()
            .map(|c| {
                let from = c.from.as_deref().unwrap_or("(absent)");
                format!("{} {}: {from} -> {}", c.resource, c.field, c.to)
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    Err(OpsError::PlanChanged(format!(
        "approved plan {} ({}) is now {} ({}); nothing was applied: plan and approve again",
        approved.sha256(),
        lines(approved),
        now.sha256(),
        lines(&now)
    )))
}

/// The pre-change snapshots started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshots {
    /// Their identifiers.
    pub snapshots: Vec<String>,
    /// The lock, renewed at the start of every poll ([`HeldLock`]); never part of an answer.
    #[serde(default, skip_serializing)]
    pub lock: Option<HeldLock>,
}

/// The identifier of an instance's pre-change snapshot for a deployment (deterministic: a retry finds it).
/// Retention recognises pre-change snapshots by this identifier and ages them out.
pub fn pre_change_snapshot_id(instance: &str, deployment_id: &str) -> String {
    opsplane_shared::domain::backup::pre_change_snapshot_identifier(instance, deployment_id)
}

/// Starts a tagged manual snapshot of every existing instance the plan changes.
pub async fn snapshot(deps: &Deps, input: SnapshotInput) -> Result<Snapshots, OpsError> {
    renew_held(deps.lock.as_ref(), input.lock.as_ref()).await?;
    if let Some(version) = &input.spec_version {
        confirm_plan(deps, &input.environment, version, &input.plan).await?;
    }
    let mut snapshots = Vec::new();
    for instance in input.plan.instances_changed() {
        let id = pre_change_snapshot_id(&instance, &input.deployment_id);
        let tags = BTreeMap::from([
            (TAG_ENVIRONMENT.to_owned(), input.environment.clone()),
            (TAG_MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned()),
            (TAG_DEPLOYMENT.to_owned(), input.deployment_id.clone()),
        ]);
        deps.rds.create_snapshot(&instance, &id, &tags).await?;
        tracing::info!(
            environment = input.environment,
            instance,
            snapshot = id,
            "pre-change snapshot started"
        );
        snapshots.push(id);
    }
    Ok(Snapshots {
        snapshots,
        lock: None,
    })
}

/// Polls the pre-change snapshots: `NotReady` until every one is available.
pub async fn check_snapshots(deps: &Deps, input: Snapshots) -> Result<Snapshots, OpsError> {
    renew_held(deps.lock.as_ref(), input.lock.as_ref()).await?;
    // One batched describe for every pre-change snapshot, however many instances change.
    let found = deps.rds.snapshots(&input.snapshots).await?;
    for id in &input.snapshots {
        let snap = found
            .iter()
            .find(|s| &s.id == id)
            .ok_or_else(|| OpsError::ResourceNotFound(format!("pre-change snapshot {id}")))?;
        match snap.status.as_str() {
            "available" => {}
            "failed" | "error" => {
                return Err(OpsError::Internal(format!(
                    "pre-change snapshot {id} is {}: nothing was changed",
                    snap.status
                )));
            }
            other => return Err(OpsError::NotReady(format!("snapshot {id} is {other}"))),
        }
    }
    Ok(input)
}

/// `apply` and `check-stable`: what to bring the environment to, under which token.
#[derive(Debug, Deserialize)]
pub struct ApplyInput {
    /// The environment.
    pub environment: String,
    /// The spec version applied.
    pub spec_version: String,
    /// The lock's fencing token.
    pub token: u64,
    /// The approved plan: only its changes are carried out.
    pub plan: Plan,
    /// The lock, renewed at the start of every call ([`HeldLock`]).
    #[serde(default)]
    pub lock: Option<HeldLock>,
}

/// What an apply did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// One line per call made.
    pub issued: Vec<String>,
    /// Whether the environment has converged (`check-stable` only).
    pub stable: bool,
}

fn key(c: &Change) -> (Resource, String) {
    (c.resource.clone(), c.field.clone())
}

fn modification(
    db: &opsplane_shared::domain::spec::RdsSpec,
    fields: &BTreeSet<&str>,
) -> InstanceModification {
    let has = |f: &str| fields.contains(f);
    // A setting the plan changes, as the spec has it; the planner's field names are the spec's.
    macro_rules! pick {
        ($field:ident) => {
            db.$field.clone().filter(|_| has(stringify!($field)))
        };
    }
    InstanceModification {
        instance_class: has("instance_class").then(|| db.instance_class.clone()),
        multi_az: pick!(multi_az),
        backup_retention_days: pick!(backup_retention_days),
        deletion_protection: pick!(deletion_protection),
        publicly_accessible: pick!(publicly_accessible),
        allocated_storage_gb: pick!(allocated_storage_gb),
        engine_version: pick!(engine_version),
        db_subnet_group: pick!(db_subnet_group),
        vpc_security_group_ids: if has("vpc_security_group_ids") {
            db.vpc_security_group_ids.clone()
        } else {
            Vec::new()
        },
        parameter_group: pick!(parameter_group),
        option_group: pick!(option_group),
        storage_type: pick!(storage_type),
        iops: pick!(iops),
        storage_throughput: pick!(storage_throughput),
        ca_certificate_identifier: pick!(ca_certificate_identifier),
        backup_window: pick!(backup_window),
        maintenance_window: pick!(maintenance_window),
        auto_minor_version_upgrade: pick!(auto_minor_version_upgrade),
        iam_database_authentication: pick!(iam_database_authentication),
        performance_insights: pick!(performance_insights),
        monitoring: pick!(monitoring_interval)
            .map(|interval| (interval, db.monitoring_role_arn.clone())),
    }
}

/// Carries out the approved changes still outstanding against `actual`, in an order AWS accepts: node
/// groups of a cluster that does not exist yet, or is being upgraded, wait for the next round.
async fn apply_outstanding(
    deps: &Deps,
    spec: &EnvironmentSpec,
    approved: &Plan,
    actual: &ActualState,
    token: u64,
) -> Result<Vec<String>, OpsError> {
    let wanted: BTreeSet<(Resource, String)> = approved.changes.iter().map(key).collect();
    let current = plan(spec, actual);
    let todo: Vec<&Change> = current
        .changes
        .iter()
        .filter(|c| wanted.contains(&key(c)))
        .collect();
    if todo.is_empty() {
        return Ok(Vec::new());
    }
    // The fence check before every mutating call, not once: a Lambda invocation outlives the execution
    // StopExecution ended, so a rollback may take the lock while this apply is between two calls; from
    // then on it makes none.
    let fence = || deps.state.raise_fence(&spec.environment, token);
    let tags = resource_tags(spec);
    let cluster_busy = todo.iter().any(|c| {
        matches!(c.resource, Resource::Cluster { .. })
            && matches!(c.kind, ChangeKind::Create | ChangeKind::Upgrade)
    }) || actual
        .cluster
        .as_ref()
        .is_some_and(|c| c.status != "ACTIVE");
    let mut modifications: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut issued = Vec::new();
    // EKS runs one update of a cluster or node group at a time (a second is `ResourceInUseException`):
    // a resource with more than one change outstanding gets one call per round.
    let mut updated: BTreeSet<&Resource> = BTreeSet::new();
    for c in &todo {
        let first_update = || !updated.contains(&c.resource);
        match (&c.resource, c.kind) {
            (Resource::Instance { identifier }, ChangeKind::Create) => {
                let db = spec.instance(identifier).ok_or_else(|| {
                    OpsError::Internal(format!("plan names {identifier}, which the spec lacks"))
                })?;
                fence().await?;
                deps.rds.create_instance(db, &tags).await?;
                issued.push(format!("CreateDBInstance {identifier}"));
            }
            (Resource::Instance { identifier }, _) => {
                modifications
                    .entry(identifier.as_str())
                    .or_default()
                    .insert(c.field.as_str());
            }
            (Resource::Cluster { name }, ChangeKind::Create) => {
                let eks = spec.eks.as_ref().ok_or_else(|| {
                    OpsError::Internal(format!("plan names cluster {name}, which the spec lacks"))
                })?;
                fence().await?;
                deps.eks.create_cluster(eks, &tags).await?;
                issued.push(format!("CreateCluster {name}"));
            }
            (Resource::Cluster { name }, ChangeKind::Upgrade) if first_update() => {
                fence().await?;
                deps.eks.update_cluster_version(name, &c.to).await?;
                updated.insert(&c.resource);
                issued.push(format!("UpdateClusterVersion {name} {}", c.to));
            }
            (Resource::Cluster { name }, ChangeKind::Modify) if first_update() && !cluster_busy => {
                let eks = spec.eks.as_ref().ok_or_else(|| {
                    OpsError::Internal(format!("plan names cluster {name}, which the spec lacks"))
                })?;
                fence().await?;
                match c.field.as_str() {
                    "logging" => {
                        let types = eks.logging.as_deref().unwrap_or_default();
                        deps.eks.update_logging(name, types).await?;
                    }
                    "subnet_ids" => deps.eks.update_network(eks, NetworkPart::Subnets).await?,
                    "security_group_ids" => {
                        deps.eks
                            .update_network(eks, NetworkPart::SecurityGroups)
                            .await?;
                    }
                    _ => deps.eks.update_endpoint(eks).await?,
                }
                updated.insert(&c.resource);
                issued.push(format!("UpdateClusterConfig {name} {}", c.field));
            }
            (Resource::Nodegroup { cluster, name }, kind) => {
                let eks = spec.eks.as_ref().ok_or_else(|| {
                    OpsError::Internal(format!(
                        "plan names node group {name}, which the spec lacks"
                    ))
                })?;
                let ng = eks
                    .nodegroups
                    .iter()
                    .find(|n| &n.name == name)
                    .ok_or_else(|| {
                        OpsError::Internal(format!(
                            "plan names node group {name}, which the spec lacks"
                        ))
                    })?;
                match kind {
                    _ if kind != ChangeKind::Create && !first_update() => {}
                    ChangeKind::Create | ChangeKind::Upgrade if cluster_busy => {
                        tracing::info!(
                            cluster,
                            nodegroup = name,
                            "waiting for the cluster before the node group"
                        );
                    }
                    ChangeKind::Create => {
                        fence().await?;
                        deps.eks.create_nodegroup(eks, ng, &tags).await?;
                        issued.push(format!("CreateNodegroup {cluster}/{name}"));
                    }
                    ChangeKind::Scale => {
                        fence().await?;
                        deps.eks.update_scaling(cluster, ng).await?;
                        updated.insert(&c.resource);
                        issued.push(format!("UpdateNodegroupConfig {cluster}/{name} {}", c.to));
                    }
                    ChangeKind::Upgrade if c.field == "launch_template_version" => {
                        fence().await?;
                        deps.eks
                            .update_nodegroup_version(
                                cluster,
                                name,
                                None,
                                ng.launch_template.as_ref(),
                            )
                            .await?;
                        updated.insert(&c.resource);
                        issued.push(format!(
                            "UpdateNodegroupVersion {cluster}/{name} launch template {}",
                            c.to
                        ));
                    }
                    ChangeKind::Upgrade => {
                        fence().await?;
                        deps.eks
                            .update_nodegroup_version(cluster, name, Some(&c.to), None)
                            .await?;
                        updated.insert(&c.resource);
                        issued.push(format!("UpdateNodegroupVersion {cluster}/{name} {}", c.to));
                    }
                    ChangeKind::Modify => {
                        let have = actual
                            .cluster
                            .iter()
                            .flat_map(|c| &c.nodegroups)
                            .find(|n| &n.name == name)
                            .cloned()
                            .unwrap_or_default();
                        fence().await?;
                        // Labels and taints go in one call.
                        deps.eks
                            .update_labels_and_taints(cluster, ng, &have)
                            .await?;
                        updated.insert(&c.resource);
                        issued.push(format!(
                            "UpdateNodegroupConfig {cluster}/{name} labels and taints"
                        ));
                    }
                }
            }
            // Add-ons and access entries need an ACTIVE control plane; one update of an add-on at a time.
            (Resource::Addon { cluster, name }, kind) if first_update() && !cluster_busy => {
                let addon = spec
                    .eks
                    .as_ref()
                    .and_then(|e| e.addons.get(name))
                    .ok_or_else(|| {
                        OpsError::Internal(format!(
                            "plan names add-on {name}, which the spec lacks"
                        ))
                    })?;
                fence().await?;
                if kind == ChangeKind::Create {
                    deps.eks.create_addon(cluster, name, addon, &tags).await?;
                    issued.push(format!("CreateAddon {cluster}/{name}"));
                } else {
                    deps.eks.update_addon(cluster, name, addon).await?;
                    issued.push(format!("UpdateAddon {cluster}/{name} {}", c.field));
                }
                updated.insert(&c.resource);
            }
            // One call brings an entry to the spec whole (its groups and policies): once per round.
            (Resource::AccessEntry { cluster, principal }, kind)
                if !cluster_busy && first_update() =>
            {
                let entry = spec
                    .eks
                    .iter()
                    .flat_map(|e| &e.access_entries)
                    .find(|e| &e.principal_arn == principal)
                    .ok_or_else(|| {
                        OpsError::Internal(format!(
                            "plan names access entry {principal}, which the spec lacks"
                        ))
                    })?;
                let have = actual
                    .cluster
                    .as_ref()
                    .and_then(|c| c.access_entries.get(principal))
                    .filter(|_| kind != ChangeKind::Create);
                fence().await?;
                deps.eks.admit(cluster, entry, have, &tags).await?;
                updated.insert(&c.resource);
                let call = match have {
                    None => "CreateAccessEntry",
                    Some(_) => "UpdateAccessEntry",
                };
                issued.push(format!("{call} {cluster} {principal}"));
            }
            // ElastiCache takes one change of a group at a time: one per round, the next once it is available.
            (Resource::ReplicationGroup { id }, kind) if first_update() => {
                let want = spec.cache(id).ok_or_else(|| {
                    OpsError::Internal(format!(
                        "plan names replication group {id}, which the spec lacks"
                    ))
                })?;
                if kind == ChangeKind::Create {
                    let token = match &want.auth_token_secret {
                        Some(arn) => Some(crate::auth_token(deps, arn).await?),
                        None => None,
                    };
                    fence().await?;
                    deps.caches.create(want, &tags, token).await?;
                    issued.push(format!("CreateReplicationGroup {id}"));
                } else {
                    let have = actual.replication_group(id).ok_or_else(|| {
                        OpsError::Internal(format!(
                            "plan changes replication group {id}, which is gone"
                        ))
                    })?;
                    fence().await?;
                    deps.caches.modify(want, have, &c.field).await?;
                    issued.push(format!("ModifyReplicationGroup {id} {}", c.field));
                }
                updated.insert(&c.resource);
            }
            (
                Resource::Cluster { .. }
                | Resource::ReplicationGroup { .. }
                | Resource::Environment { .. }
                | Resource::Addon { .. }
                | Resource::AccessEntry { .. },
                _,
            ) => {}
        }
    }
    for (identifier, fields) in modifications {
        let Some(db) = spec.instance(identifier) else {
            continue;
        };
        let m = modification(db, &fields);
        if !m.is_empty() {
            fence().await?;
            deps.rds.modify_instance(identifier, &m).await?;
            let names: Vec<&str> = fields.into_iter().collect();
            issued.push(format!("ModifyDBInstance {identifier} {}", names.join(",")));
        }
    }
    for line in &issued {
        tracing::info!(
            environment = spec.environment,
            token,
            call = line,
            "applied"
        );
    }
    Ok(issued)
}

/// Applies the approved plan's outstanding changes.
pub async fn apply(deps: &Deps, input: ApplyInput) -> Result<Applied, OpsError> {
    renew_held(deps.lock.as_ref(), input.lock.as_ref()).await?;
    let stored = deps
        .spec(&input.environment, Some(&input.spec_version))
        .await?;
    let actual = observe((&deps.rds, &deps.eks, &deps.caches), &stored.spec).await?;
    let issued = apply_outstanding(deps, &stored.spec, &input.plan, &actual, input.token).await?;
    Ok(Applied {
        issued,
        stable: false,
    })
}

fn unstable(actual: &ActualState) -> Option<String> {
    for i in &actual.instances {
        if i.status != "available" {
            return Some(format!("instance {} is {}", i.identifier, i.status));
        }
        if !i.pending.is_empty() {
            return Some(format!(
                "instance {} has pending {}",
                i.identifier,
                i.pending.join(",")
            ));
        }
    }
    for g in &actual.replication_groups {
        if g.status != "available" {
            return Some(format!("replication group {} is {}", g.id, g.status));
        }
    }
    if let Some(c) = &actual.cluster {
        if c.status != "ACTIVE" {
            return Some(format!("cluster {} is {}", c.name, c.status));
        }
        for n in &c.nodegroups {
            if n.status != "ACTIVE" {
                return Some(format!("node group {}/{} is {}", c.name, n.name, n.status));
            }
        }
        for (name, a) in &c.addons {
            if a.status != "ACTIVE" {
                return Some(format!("add-on {}/{name} is {}", c.name, a.status));
            }
        }
    }
    None
}

/// Polls until every resource is available/ACTIVE with nothing pending and no approved change is
/// outstanding; carries out the changes that had to wait for an earlier one (node groups after their
/// cluster). `NotReady` until then.
pub async fn check_stable(deps: &Deps, input: ApplyInput) -> Result<Applied, OpsError> {
    renew_held(deps.lock.as_ref(), input.lock.as_ref()).await?;
    let stored = deps
        .spec(&input.environment, Some(&input.spec_version))
        .await?;
    let actual = observe((&deps.rds, &deps.eks, &deps.caches), &stored.spec).await?;
    if let Some(why) = unstable(&actual) {
        return Err(OpsError::NotReady(why));
    }
    let issued = apply_outstanding(deps, &stored.spec, &input.plan, &actual, input.token).await?;
    if !issued.is_empty() {
        return Err(OpsError::NotReady(format!("applied {}", issued.join("; "))));
    }
    Ok(Applied {
        issued,
        stable: true,
    })
}

/// `revert`: back to the last known good.
#[derive(Debug, Deserialize)]
pub struct RevertInput {
    /// The environment.
    pub environment: String,
    /// The lock's fencing token.
    pub token: u64,
    /// The lock, renewed at the start of every call ([`HeldLock`]).
    #[serde(default)]
    pub lock: Option<HeldLock>,
    /// The known-good spec version to go back to (a rollback's choice); the last known good when absent.
    #[serde(default)]
    pub to: Option<String>,
}

/// What a revert did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reverted {
    /// Whether there was a last known good to go back to.
    pub reverted: bool,
    /// Its spec version.
    pub spec_version: Option<String>,
    /// The revert's plan (reversible changes only).
    pub plan: Option<Plan>,
    /// Changes that cannot be reverted (an upgrade, a storage grow), left in place.
    pub skipped: Vec<Change>,
    /// The calls made.
    pub issued: Vec<String>,
    /// Why nothing was reverted.
    pub reason: Option<String>,
}

/// Plans the last known good spec against what exists and applies its reversible changes, through the
/// same path as a deployment.
pub async fn revert(deps: &Deps, input: RevertInput) -> Result<Reverted, OpsError> {
    renew_held(deps.lock.as_ref(), input.lock.as_ref()).await?;
    let target = match &input.to {
        Some(version) => Some(version.clone()),
        None => deps
            .state
            .last_known_good(&input.environment)
            .await?
            .map(|l| l.spec_version),
    };
    let Some(target) = target else {
        tracing::warn!(
            environment = input.environment,
            "no last known good: nothing to revert to"
        );
        return Ok(Reverted {
            reverted: false,
            spec_version: None,
            plan: None,
            skipped: Vec::new(),
            issued: Vec::new(),
            reason: Some(format!(
                "environment `{}` has no last known good deployment to revert to",
                input.environment
            )),
        });
    };
    let stored = deps.spec(&input.environment, Some(&target)).await?;
    let actual = observe((&deps.rds, &deps.eks, &deps.caches), &stored.spec).await?;
    let (p, skipped) = plan(&stored.spec, &actual).revertible();
    let issued = apply_outstanding(deps, &stored.spec, &p, &actual, input.token).await?;
    tracing::info!(
        environment = input.environment,
        spec_version = target,
        changes = p.changes.len(),
        skipped = skipped.len(),
        "reverting to a known-good version"
    );
    Ok(Reverted {
        reverted: true,
        spec_version: Some(target),
        plan: Some(p),
        skipped,
        issued,
        reason: None,
    })
}
