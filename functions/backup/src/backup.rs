//! The backup workflow's actions: validate, snapshot, check, copy, export EKS, manifest, record, retention.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use opsplane_shared::OpsError;
use opsplane_shared::aws::rds::Rds;
use opsplane_shared::domain::backup::{
    MANAGED_BY_VALUE, Manifest, ManifestObject, ManifestSnapshot, TAG_BACKUP_ID, TAG_DRILL,
    TAG_DRILL_SNAPSHOT, TAG_ENVIRONMENT, TAG_MANAGED_BY, backup_prefix, copy_region_marker_key,
    copy_region_prefix, key_timestamp, manifest_key, select_for_deletion, snapshot_identifier,
};
use opsplane_shared::lock::{HeldLock, renew_held};
use opsplane_shared::state::{BackupRecord, BackupStatus};
use serde::{Deserialize, Serialize};

use crate::{Deps, short_id};

/// `validate-backup`: the workflow's input and the execution.
#[derive(Debug, Deserialize)]
pub struct ValidateInput {
    /// The workflow's input, as given.
    pub input: serde_json::Value,
    /// `$$.Execution.Id`.
    pub execution: String,
}

/// The backup's plan: everything later steps need, small.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupPlan {
    /// The environment.
    pub environment: String,
    /// This run's id (derived from the execution).
    pub backup_id: String,
    /// This run's key: timestamp and id (`20260101T000000Z-<id>`), the folder of its objects.
    pub ts: String,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// The instances to snapshot.
    pub instances: Vec<String>,
    /// The region snapshots are copied to, if any.
    pub copy_to_region: Option<String>,
    /// The key of `copy_to_region` that encrypts the copies, if any.
    #[serde(default)]
    pub copy_kms_key_id: Option<String>,
    /// The EKS cluster to export, if any.
    pub cluster: Option<String>,
    /// The Redis replication groups to snapshot.
    #[serde(default)]
    pub caches: Vec<String>,
    /// The bucket Redis snapshots are exported to, if any.
    #[serde(default)]
    pub redis_export_bucket: Option<String>,
}

/// Checks the input and the environment's spec; touches nothing.
pub async fn validate(deps: &Deps, input: ValidateInput) -> Result<BackupPlan, OpsError> {
    let (_, environment) = opsplane_shared::boundary::workflow_input(
        &input.input,
        &[],
        "the backup workflow takes only `environment` (and the object `github`)",
    )?;
    let spec = deps.spec(environment).await?;
    if spec.rds.is_empty() && spec.eks.is_none() && spec.redis.is_empty() {
        return Err(OpsError::invalid(
            "environment",
            format!(
                "the spec of `{environment}` has no rds instances, eks cluster or redis groups: nothing to back up"
            ),
        ));
    }
    let instances: Vec<String> = spec.rds.iter().map(|d| d.identifier.clone()).collect();
    check_snapshot_quota(deps, None, instances.len()).await?;
    if let Some(region) = &spec.backup.copy_to_region {
        if spec.backup.copy_kms_key_id.is_none() {
            check_copies_unencrypted(deps, &instances, region).await?;
        }
        check_snapshot_quota(deps, Some(region), instances.len()).await?;
    }
    let started_at = deps.now();
    let backup_id = short_id(&input.execution);
    Ok(BackupPlan {
        environment: environment.to_owned(),
        // The id keeps two runs within one second apart; the timestamp first keeps keys in time order.
        ts: format!("{}-{backup_id}", key_timestamp(started_at)),
        backup_id,
        started_at,
        instances,
        copy_to_region: spec.backup.copy_to_region.clone(),
        copy_kms_key_id: spec.backup.copy_kms_key_id.clone(),
        cluster: spec.eks.as_ref().map(|e| e.cluster.clone()),
        caches: spec
            .redis
            .iter()
            .map(|g| g.replication_group_id.clone())
            .collect(),
        redis_export_bucket: spec.backup.redis_export_bucket.clone(),
    })
}

/// Fails before any snapshot is taken when an instance is encrypted and the spec names no key for its
/// copies: a KMS key belongs to one region, so RDS refuses to copy an encrypted snapshot to another region
/// without a key of that region (CopyDBSnapshot API reference, KmsKeyId), and the refusal would come only
/// after the snapshots were made.
async fn check_copies_unencrypted(
    deps: &Deps,
    instances: &[String],
    region: &str,
) -> Result<(), OpsError> {
    for id in instances {
        let encrypted = deps
            .rds
            .instance(id)
            .await?
            .and_then(|i| i.storage_encrypted);
        if encrypted == Some(true) {
            return Err(OpsError::invalid(
                "backup.copy_kms_key_id",
                format!(
                    "`{id}` is encrypted, and its copies in {region} must be encrypted with a KMS key of \
                     {region}: set backup.copy_kms_key_id to that key's ARN or alias"
                ),
            ));
        }
    }
    Ok(())
}

/// Fails before anything is created when `needed` more manual snapshots would pass the Region's quota
/// (RDS: 100 manual DB snapshots per Region): a backup refused halfway would leave some instances backed
/// up and others not, and retention only frees snapshots after the new ones exist.
async fn check_snapshot_quota(
    deps: &Deps,
    region: Option<&str>,
    needed: usize,
) -> Result<(), OpsError> {
    if needed == 0 {
        return Ok(());
    }
    let rds = rds_in(deps, region);
    let Some((used, max)) = rds.manual_snapshot_quota().await? else {
        return Ok(());
    };
    if used + needed as i64 > max {
        let region = region.unwrap_or(&deps.config.region);
        return Err(OpsError::QuotaExceeded(format!(
            "this backup needs {needed} manual DB snapshots in {region}, which already has {used} of the \
             {max} RDS allows per Region (quota ManualSnapshots): delete snapshots no longer needed (a lower \
             backup.keep_last lets retention delete more) or ask AWS for a higher quota"
        )));
    }
    Ok(())
}

/// The tags every backup snapshot carries.
pub fn backup_tags(
    environment: &str,
    backup_id: &str,
    extra: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut tags: BTreeMap<String, String> = extra
        .iter()
        .filter(|(k, _)| !k.starts_with("opsplane:") && !k.starts_with("aws:"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    tags.insert(TAG_ENVIRONMENT.into(), environment.into());
    tags.insert(TAG_BACKUP_ID.into(), backup_id.into());
    tags.insert(TAG_MANAGED_BY.into(), MANAGED_BY_VALUE.into());
    tags
}

/// `snapshot`: one instance of the plan.
#[derive(Debug, Deserialize)]
pub struct SnapshotInput {
    /// The environment.
    pub environment: String,
    /// The run's id.
    pub backup_id: String,
    /// The instance.
    pub instance: String,
    /// The backup's lock, renewed at the start of every call ([`HeldLock`]).
    #[serde(default)]
    pub lock: Option<HeldLock>,
}

/// A snapshot started or found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRef {
    /// The instance.
    pub instance: String,
    /// The snapshot's identifier.
    pub snapshot_id: String,
    /// Its ARN.
    pub arn: String,
    /// Its status when last seen.
    pub status: String,
    /// Its creation time, once stamped.
    pub created_at: Option<DateTime<Utc>>,
}

/// Starts a tagged manual snapshot of one instance (idempotent on retry).
pub async fn snapshot(deps: &Deps, input: SnapshotInput) -> Result<SnapshotRef, OpsError> {
    renew_held(deps.lock.as_ref(), input.lock.as_ref()).await?;
    let spec = deps.spec(&input.environment).await?;
    if spec.instance(&input.instance).is_none() {
        return Err(OpsError::invalid(
            "instance",
            format!(
                "{} is not an instance of environment `{}`",
                input.instance, input.environment
            ),
        ));
    }
    let id = snapshot_identifier(&input.instance, &input.backup_id);
    let tags = backup_tags(&input.environment, &input.backup_id, &spec.tags);
    let s = deps
        .rds
        .create_snapshot(&input.instance, &id, &tags)
        .await?;
    tracing::info!(instance = %input.instance, snapshot = %s.id, status = %s.status, "snapshot requested");
    Ok(SnapshotRef {
        instance: input.instance,
        snapshot_id: s.id,
        arn: s.arn,
        status: s.status,
        created_at: s.created_at,
    })
}

pub(crate) fn rds_in(deps: &Deps, region: Option<&str>) -> Rds {
    match region {
        Some(r) if r != deps.config.region => deps.rds.in_region(r),
        _ => deps.rds.clone(),
    }
}

/// `check-snapshots`: every snapshot of the backup (or every copy, with `region`) in one poll.
#[derive(Debug, Deserialize)]
pub struct CheckSnapshotsInput {
    /// The instances' snapshots, and their copies once made.
    pub taken: Vec<IterationResult>,
    /// The copy region: its copies are checked there. Absent: the snapshots, in the home region.
    #[serde(default)]
    pub region: Option<String>,
    /// The backup's lock, renewed at the start of every call ([`HeldLock`]).
    #[serde(default)]
    pub lock: Option<HeldLock>,
}

/// `NotReady` until every snapshot (or copy) is `available`, asking RDS once per
/// [`opsplane_shared::domain::backup::SNAPSHOTS_PER_CALL`] snapshots however many instances the environment has:
/// a fleet's request rate then grows with the environments being backed up, not with their instances
/// (AWS throttles the RDS API per account and Region). A failed or vanished one is an error. Returns the
/// snapshots with their status and creation time.
pub async fn check_snapshots(
    deps: &Deps,
    input: CheckSnapshotsInput,
) -> Result<Vec<IterationResult>, OpsError> {
    renew_held(deps.lock.as_ref(), input.lock.as_ref()).await?;
    let copies = input.region.is_some();
    let id_of = |t: &IterationResult| -> Result<String, OpsError> {
        if !copies {
            return Ok(t.snapshot.snapshot_id.clone());
        }
        t.copy
            .as_ref()
            .map(|c| c.snapshot_id.clone())
            .ok_or_else(|| {
                OpsError::invalid(
                    "taken",
                    format!("{} has no copy to check", t.snapshot.snapshot_id),
                )
            })
    };
    let ids = input
        .taken
        .iter()
        .map(id_of)
        .collect::<Result<Vec<_>, _>>()?;
    let found: BTreeMap<String, opsplane_shared::aws::rds::Snapshot> =
        rds_in(deps, input.region.as_deref())
            .snapshots(&ids)
            .await?
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect();
    let mut waiting = Vec::new();
    let mut out = Vec::with_capacity(input.taken.len());
    for (mut t, id) in input.taken.into_iter().zip(ids) {
        let s = found
            .get(&id)
            .ok_or_else(|| OpsError::ResourceNotFound(format!("snapshot {id} does not exist")))?;
        match s.status.as_str() {
            "available" => {}
            "failed" | "deleted" | "deleting" => {
                return Err(OpsError::Internal(format!("snapshot {id} is {}", s.status)));
            }
            other => waiting.push(format!("{id} is {other}")),
        }
        if !copies {
            t.snapshot.status = s.status.clone();
            t.snapshot.created_at = s.created_at;
        }
        out.push(t);
    }
    if !waiting.is_empty() {
        return Err(OpsError::NotReady(format!(
            "{} of {} snapshots not available yet: {}",
            waiting.len(),
            out.len(),
            waiting.join(", ")
        )));
    }
    Ok(out)
}

/// `copy-snapshot`: copy one available snapshot to another region.
#[derive(Debug, Deserialize)]
pub struct CopyInput {
    /// The snapshot's ARN (in the control plane's region).
    pub arn: String,
    /// Its identifier, reused for the copy.
    pub snapshot_id: String,
    /// The destination region.
    pub region: String,
    /// The key of the destination region that encrypts the copy, if any.
    #[serde(default)]
    pub kms_key_id: Option<String>,
    /// The backup's lock, renewed at the start of every call ([`HeldLock`]).
    #[serde(default)]
    pub lock: Option<HeldLock>,
}

/// A copy started or found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyRef {
    /// The destination region.
    pub region: String,
    /// The copy's identifier.
    pub snapshot_id: String,
}

/// Starts the cross-region copy, keeping the tags (idempotent on retry).
pub async fn copy_snapshot(deps: &Deps, input: CopyInput) -> Result<CopyRef, OpsError> {
    renew_held(deps.lock.as_ref(), input.lock.as_ref()).await?;
    let target = deps.rds.in_region(&input.region);
    let copy = target
        .copy_snapshot_here(&input.arn, &input.snapshot_id, input.kms_key_id.as_deref())
        .await?;
    Ok(CopyRef {
        region: input.region,
        snapshot_id: copy.id,
    })
}

/// `export-eks`: the cluster's configuration to S3.
#[derive(Debug, Deserialize)]
pub struct ExportInput {
    /// The environment.
    pub environment: String,
    /// The run's key timestamp.
    pub ts: String,
}

/// The export, if the environment has a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportOutput {
    /// The object written (absent without a cluster).
    pub object: Option<ManifestObject>,
}

/// Writes the cluster and node group descriptions to `backups/<env>/<ts>/eks.json`.
pub async fn export_eks(deps: &Deps, input: ExportInput) -> Result<ExportOutput, OpsError> {
    let spec = deps.spec(&input.environment).await?;
    let Some(eks) = &spec.eks else {
        return Ok(ExportOutput { object: None });
    };
    let doc = deps.eks.export(&eks.cluster).await?;
    let bytes = serde_json::to_vec_pretty(&doc)
        .map_err(|e| OpsError::Internal(format!("serialising the EKS export: {e}")))?;
    let key = format!("{}/eks.json", backup_prefix(&input.environment, &input.ts));
    let object = deps.objects.put(&key, bytes, "application/json").await?;
    Ok(ExportOutput {
        object: Some(object),
    })
}

/// One instance's snapshot and its copy, as the instance branch of the backup carries them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IterationResult {
    /// The snapshot.
    pub snapshot: SnapshotRef,
    /// Its copy, if one was made.
    #[serde(default)]
    pub copy: Option<CopyRef>,
}

/// `write-manifest`.
#[derive(Debug, Deserialize)]
pub struct ManifestInput {
    /// The plan.
    pub plan: BackupPlan,
    /// The Map's results, one per instance.
    pub snapshots: Vec<IterationResult>,
    /// The EKS export.
    #[serde(default)]
    pub export: Option<ExportOutput>,
    /// The Redis Map's results, one per replication group.
    #[serde(default)]
    pub caches: Vec<crate::caches::CacheIteration>,
}

/// Where the manifest is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestRef {
    /// Its key.
    pub manifest_key: String,
    /// SHA-256 of its bytes.
    pub manifest_sha256: String,
    /// The snapshots it lists.
    pub snapshot_ids: Vec<String>,
}

/// Writes each snapshot's description and the manifest listing every snapshot and object with its SHA-256.
pub async fn write_manifest(deps: &Deps, input: ManifestInput) -> Result<ManifestRef, OpsError> {
    let plan = &input.plan;
    let prefix = backup_prefix(&plan.environment, &plan.ts);
    let mut snapshots = Vec::with_capacity(input.snapshots.len());
    // One batched describe for every instance's snapshot, as the polls are.
    let ids: Vec<String> = input
        .snapshots
        .iter()
        .map(|it| it.snapshot.snapshot_id.clone())
        .collect();
    let mut described: BTreeMap<String, opsplane_shared::aws::rds::Snapshot> = deps
        .rds
        .snapshots(&ids)
        .await?
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect();
    for it in &input.snapshots {
        let s = described.remove(&it.snapshot.snapshot_id).ok_or_else(|| {
            OpsError::ResourceNotFound(format!(
                "snapshot {} vanished before the manifest was written",
                it.snapshot.snapshot_id
            ))
        })?;
        let bytes = serde_json::to_vec_pretty(&s)
            .map_err(|e| OpsError::Internal(format!("serialising snapshot {}: {e}", s.id)))?;
        let key = format!("{prefix}/rds/{}.json", s.instance);
        let description = deps.objects.put(&key, bytes, "application/json").await?;
        snapshots.push(ManifestSnapshot {
            instance: s.instance.clone(),
            snapshot_id: s.id.clone(),
            arn: s.arn.clone(),
            created_at: s.created_at,
            copy: it
                .copy
                .as_ref()
                .map(|c| format!("{}:{}", c.region, c.snapshot_id)),
            description,
        });
    }
    let mut caches = Vec::with_capacity(input.caches.len());
    for it in &input.caches {
        let name = &it.snapshot.snapshot_name;
        let s = deps.caches.snapshot(name).await?.ok_or_else(|| {
            OpsError::ResourceNotFound(format!(
                "cache snapshot {name} vanished before the manifest was written"
            ))
        })?;
        let bytes = serde_json::to_vec_pretty(&s)
            .map_err(|e| OpsError::Internal(format!("serialising cache snapshot {name}: {e}")))?;
        let key = format!("{prefix}/redis/{}.json", s.group);
        let description = deps.objects.put(&key, bytes, "application/json").await?;
        caches.push(ManifestSnapshot {
            instance: s.group.clone(),
            snapshot_id: s.name.clone(),
            arn: s.arn.clone(),
            created_at: s.created_at,
            copy: it
                .export
                .as_ref()
                .map(|x| format!("s3://{}/{}", x.bucket, x.key)),
            description,
        });
    }
    let manifest = Manifest {
        environment: plan.environment.clone(),
        backup_id: plan.backup_id.clone(),
        ts: plan.ts.clone(),
        created_at: deps.now(),
        snapshots,
        caches,
        objects: input.export.and_then(|e| e.object).into_iter().collect(),
    };
    let bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| OpsError::Internal(format!("serialising the manifest: {e}")))?;
    let key = manifest_key(&plan.environment, &plan.ts);
    let written = deps.objects.put(&key, bytes, "application/json").await?;
    Ok(ManifestRef {
        manifest_key: written.key,
        manifest_sha256: written.sha256,
        snapshot_ids: manifest
            .snapshots
            .iter()
            .chain(manifest.caches.iter())
            .map(|s| s.snapshot_id.clone())
            .collect(),
    })
}

/// `record-backup`: the catalog record, on success or failure.
#[derive(Debug, Deserialize)]
pub struct RecordInput {
    /// The plan.
    pub plan: BackupPlan,
    /// `$$.Execution.Id`.
    pub execution: String,
    /// The lock's fencing token.
    pub token: u64,
    /// The manifest, on success.
    #[serde(default)]
    pub manifest: Option<ManifestRef>,
    /// The error that ended the run, on failure (`{"Error", "Cause"}`).
    #[serde(default)]
    pub error: Option<serde_json::Value>,
}

/// The record written.
#[derive(Debug, Clone, Serialize)]
pub struct RecordOutput {
    /// The record's status.
    pub status: BackupStatus,
    /// Its id.
    pub id: String,
}

/// Writes the backup's catalog record, fenced by the lock's token.
pub async fn record(deps: &Deps, input: RecordInput) -> Result<RecordOutput, OpsError> {
    let status = match (&input.manifest, &input.error) {
        (Some(_), None) => BackupStatus::Completed,
        _ => BackupStatus::Failed,
    };
    let snapshot_ids = match &input.manifest {
        Some(m) => m.snapshot_ids.clone(),
        // A failed run may have made some snapshots: list them so a person can find them.
        None => {
            let run = Some(&input.plan.backup_id);
            let mut made: Vec<String> = deps
                .rds
                .manual_snapshots_of(&input.plan.instances)
                .await?
                .into_iter()
                .filter(|s| s.tags.get(TAG_BACKUP_ID) == run)
                .map(|s| s.id)
                .collect();
            if !input.plan.caches.is_empty() {
                let caches = deps.caches.manual_snapshots().await?.into_iter();
                made.extend(
                    caches
                        .filter(|s| s.tags.get(TAG_BACKUP_ID) == run)
                        .map(|s| s.name),
                );
            }
            made
        }
    };
    if let Some(err) = &input.error {
        tracing::warn!(environment = %input.plan.environment, error = %err, "backup failed");
    }
    let record = BackupRecord {
        environment: input.plan.environment.clone(),
        id: input.plan.backup_id.clone(),
        created_at: input.plan.started_at,
        snapshot_ids,
        manifest_key: input.manifest.as_ref().map(|m| m.manifest_key.clone()),
        manifest_sha256: input.manifest.as_ref().map(|m| m.manifest_sha256.clone()),
        status,
        execution: Some(input.execution),
    };
    deps.state
        .put(&record, input.token)
        .await
        .map_err(OpsError::from)?;
    Ok(RecordOutput {
        status,
        id: record.id,
    })
}

/// `retention`.
#[derive(Debug, Deserialize)]
pub struct RetentionInput {
    /// The environment.
    pub environment: String,
}

/// What retention did in one region.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RetentionOutcome {
    /// The region.
    pub region: String,
    /// Snapshots deleted.
    pub deleted: Vec<String>,
    /// How many were kept, by reason.
    pub kept: BTreeMap<String, usize>,
}

/// What retention did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RetentionOutput {
    /// One outcome per region (home, then the copy region).
    pub regions: Vec<RetentionOutcome>,
    /// The Redis snapshots' outcome, for an environment with replication groups (null otherwise).
    #[serde(default)]
    pub caches: Option<RetentionOutcome>,
}

/// Snapshots in use: the source of every live drill scratch instance (a running drill, or one that died and
/// awaits the orphan sweep).
pub async fn referenced_snapshots(rds: &Rds) -> Result<BTreeSet<String>, OpsError> {
    Ok(rds
        .instances_tagged(TAG_DRILL)
        .await?
        .into_iter()
        .filter_map(|i| i.tags.get(TAG_DRILL_SNAPSHOT).cloned())
        .collect())
}

/// Completed backups whose manifests name the instances retention visits beside the spec's.
const RECENT_BACKUPS: u32 = 3;

/// The instances whose snapshots retention reads: the spec's, and those its recent backups took (an
/// instance just removed from the spec still has its expired snapshots pruned; its newest `keep_last`
/// stay, as the rules keep them anyway). Reading these, not every snapshot of the Region, keeps an
/// environment's retention to a request or two however many snapshots the account holds.
async fn retained_instances(
    deps: &Deps,
    spec: &opsplane_shared::domain::spec::EnvironmentSpec,
) -> Result<Vec<String>, OpsError> {
    let mut instances: BTreeSet<String> = spec.rds.iter().map(|d| d.identifier.clone()).collect();
    let records: Vec<BackupRecord> = deps
        .state
        .latest(&spec.environment, RECENT_BACKUPS)
        .await
        .map_err(OpsError::from)?;
    for key in records
        .iter()
        .filter(|r| r.status == BackupStatus::Completed)
        .filter_map(|r| r.manifest_key.as_deref())
    {
        let Some(bytes) = deps.objects.get(key).await? else {
            continue;
        };
        if let Ok(manifest) = serde_json::from_slice::<Manifest>(&bytes) {
            instances.extend(manifest.snapshots.into_iter().map(|s| s.instance));
        }
    }
    Ok(instances.into_iter().collect())
}

/// Deletes what the pure selection allows, in the home region and every region backups were copied to.
pub async fn retention(deps: &Deps, input: RetentionInput) -> Result<RetentionOutput, OpsError> {
    let spec = deps.spec(&input.environment).await?;
    let now = deps.now();
    let mut regions = vec![(deps.config.region.clone(), deps.rds.clone())];
    // Every region backups were ever copied to, not only today's `copy_to_region`: copies in a former copy
    // region would otherwise never be visited again, and never age out. The current one is recorded first.
    if let Some(r) = &spec.backup.copy_to_region
        && r != &deps.config.region
    {
        deps.objects
            .put(
                &copy_region_marker_key(&input.environment, r),
                Vec::new(),
                "text/plain",
            )
            .await?;
    }
    let prefix = copy_region_prefix(&input.environment);
    let copy_regions: BTreeSet<String> = deps
        .objects
        .list(&prefix)
        .await?
        .iter()
        .filter_map(|key| key.strip_prefix(&prefix))
        .filter(|r| !r.is_empty() && !r.contains('/') && *r != deps.config.region)
        .map(str::to_owned)
        .collect();
    for r in copy_regions {
        let rds = deps.rds.in_region(&r);
        regions.push((r, rds));
    }
    let instances = retained_instances(deps, &spec).await?;
    let mut referenced: Option<BTreeSet<String>> = None;
    let mut out = Vec::new();
    for (region, rds) in regions {
        let infos: Vec<_> = rds
            .manual_snapshots_of(&instances)
            .await?
            .iter()
            .map(|s| s.info())
            .collect();
        let mut decision = select_for_deletion(
            &input.environment,
            &infos,
            &spec.backup,
            &BTreeSet::new(),
            now,
        );
        // Which snapshots live drills were restored from matters only for those the rules would delete;
        // finding out reads every instance of the Region, so only then.
        if !decision.delete.is_empty() {
            if referenced.is_none() {
                referenced = Some(referenced_snapshots(&deps.rds).await?);
            }
            let held = referenced.as_ref().expect("read above");
            decision = select_for_deletion(&input.environment, &infos, &spec.backup, held, now);
        }
        let mut deleted = Vec::new();
        for id in &decision.delete {
            if rds.delete_snapshot(id).await? {
                tracing::info!(environment = %input.environment, %region, snapshot = %id, "snapshot deleted by retention");
                deleted.push(id.clone());
            }
        }
        let mut kept: BTreeMap<String, usize> = BTreeMap::new();
        for (_, r) in &decision.keep {
            *kept.entry(r.as_str().to_owned()).or_default() += 1;
        }
        out.push(RetentionOutcome {
            region,
            deleted,
            kept,
        });
    }
    let caches = if spec.redis.is_empty() {
        None
    } else {
        Some(crate::caches::retention(deps, &input.environment, now).await?)
    };
    Ok(RetentionOutput {
        regions: out,
        caches,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsplane_shared::domain::backup::KeepReason;

    #[test]
    fn backup_tags_cannot_be_overridden_by_the_spec() {
        let extra: BTreeMap<String, String> = [
            ("Project", "acme"),
            ("ManagedBy", "terraform"),
            ("opsplane:environment", "other"),
            ("aws:reserved", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let tags = backup_tags("prod", "b1", &extra);
        assert_eq!(tags["Project"], "acme");
        assert_eq!(tags[TAG_MANAGED_BY], MANAGED_BY_VALUE);
        assert_eq!(tags[TAG_ENVIRONMENT], "prod");
        assert_eq!(tags[TAG_BACKUP_ID], "b1");
        assert!(!tags.contains_key("aws:reserved"));
    }

    #[test]
    fn keep_reasons_have_stable_names() {
        assert_eq!(KeepReason::AmongNewest.as_str(), "among-newest");
        assert_eq!(KeepReason::NotOurs.as_str(), "not-ours");
        // The names shown are the serialized ones, variant by variant.
        for r in [
            KeepReason::NotOurs,
            KeepReason::NotAvailable,
            KeepReason::NotExpired,
            KeepReason::AmongNewest,
            KeepReason::Referenced,
            KeepReason::AgeUnknown,
        ] {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
    }
}
