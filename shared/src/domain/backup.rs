//! Backups: the tags that mark what opsplane owns, the manifest, and retention as a pure function.
//!
//! Retention is the one place where a bug loses data, so the decision is made here from plain values
//! (the snapshots as listed, the references, the clock) and the adapter only carries it out.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::spec::BackupPolicy;

/// Snapshot identifiers asked for in one `DescribeDBSnapshots` (its `db-snapshot-id` filter takes a
/// list): the backup polls all its snapshots in one request per this many. The API reference documents no
/// maximum for a filter's values; 50 keeps each request small and its answer one page.
pub const SNAPSHOTS_PER_CALL: usize = 50;

/// Tag naming the environment a snapshot or drill instance belongs to.
pub const TAG_ENVIRONMENT: &str = "opsplane:environment";
/// Tag naming the backup run that made a snapshot.
pub const TAG_BACKUP_ID: &str = "opsplane:backup-id";
/// Tag key marking resources opsplane manages.
pub const TAG_MANAGED_BY: &str = "ManagedBy";
/// Value of [`TAG_MANAGED_BY`] on opsplane's resources.
pub const MANAGED_BY_VALUE: &str = "opsplane";
/// Tag carried by every drill scratch instance; its value is the drill id.
pub const TAG_DRILL: &str = "opsplane:drill";
/// Tag on a drill scratch instance naming the snapshot it was restored from: retention keeps that snapshot
/// while the instance exists.
pub const TAG_DRILL_SNAPSHOT: &str = "opsplane:drill-snapshot";
/// Tag any workflow (a pending rollback) may set on a snapshot to keep retention away from it.
pub const TAG_HOLD: &str = "opsplane:hold";
/// Tag naming the deployment a pre-change snapshot (taken by provision before it changes an instance) was
/// taken for.
pub const TAG_DEPLOYMENT: &str = "opsplane:deployment";

/// The S3 prefix of one backup run.
pub fn backup_prefix(environment: &str, ts: &str) -> String {
    format!("backups/{environment}/{ts}")
}

/// The S3 key of a backup run's manifest.
pub fn manifest_key(environment: &str, ts: &str) -> String {
    format!("{}/manifest.json", backup_prefix(environment, ts))
}

/// A timestamp as used in keys: fixed width to the millisecond, so keys sort in time order; no ':' (S3- and
/// console-friendly).
pub fn key_timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%S%3fZ").to_string()
}

/// The snapshot identifier a backup run gives an instance's snapshot. Deterministic, so a retried
/// `CreateDBSnapshot` finds its own snapshot instead of making a second one.
pub fn snapshot_identifier(instance: &str, backup_id: &str) -> String {
    // RDS identifiers: at most 255 characters, letters, digits and single hyphens, starting with a letter.
    let base = format!("opsplane-{instance}-{backup_id}");
    base.chars().take(255).collect()
}

/// The identifier of an instance's pre-change snapshot for a deployment (deterministic: a retry finds it).
pub fn pre_change_snapshot_identifier(instance: &str, deployment_id: &str) -> String {
    format!("opsplane-pre-{deployment_id}-{instance}")
        .chars()
        .take(255)
        .collect()
}

/// The S3 key recording that backups of `environment` were copied to `region`: retention visits every
/// region so recorded, also after `copy_to_region` has changed, so copies in a former copy region age out
/// like the others instead of staying forever.
pub fn copy_region_marker_key(environment: &str, region: &str) -> String {
    format!("{}{region}", copy_region_prefix(environment))
}

/// The S3 prefix of an environment's copy-region markers ([`copy_region_marker_key`]).
pub fn copy_region_prefix(environment: &str) -> String {
    format!("backups/{environment}/copy-regions/")
}

/// What an opsplane snapshot of an environment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotKind {
    /// A backup run's snapshot (or its cross-region copy, which keeps identifier and tags).
    Backup,
    /// Provision's pre-change snapshot of an instance it is about to change.
    PreChange,
}

/// A snapshot as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// The snapshot identifier.
    pub id: String,
    /// The DB instance it was taken from.
    pub instance: String,
    /// When it was created (absent while RDS has not stamped it). A copy's is when the copy was made.
    pub created_at: Option<DateTime<Utc>>,
    /// RDS's `OriginalSnapshotCreateTime`: for a copy, when the snapshot it was copied from was created
    /// (RDS sets it on copies and, for an original, to its own creation time).
    #[serde(default)]
    pub original_created_at: Option<DateTime<Utc>>,
    /// RDS status (`available`, `creating`, ...).
    pub status: String,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
}

impl SnapshotInfo {
    /// What kind of opsplane snapshot of `environment` this is: `None` unless it carries opsplane's tags for
    /// the environment *and* the identifier opsplane gives that kind. Tags alone are not enough: a copy made
    /// by hand with "copy tags" carries them under another identifier, and must never count as a backup
    /// (with its fresh creation time, as the newest one) nor be deleted by retention.
    pub fn kind(&self, environment: &str) -> Option<SnapshotKind> {
        let tag = |name: &str| self.tags.get(name).map(String::as_str);
        if tag(TAG_MANAGED_BY) != Some(MANAGED_BY_VALUE)
            || tag(TAG_ENVIRONMENT) != Some(environment)
        {
            return None;
        }
        match (tag(TAG_BACKUP_ID), tag(TAG_DEPLOYMENT)) {
            (Some(backup), _)
                if !backup.is_empty() && self.id == snapshot_identifier(&self.instance, backup) =>
            {
                Some(SnapshotKind::Backup)
            }
            (None, Some(deployment))
                if !deployment.is_empty()
                    && self.id == pre_change_snapshot_identifier(&self.instance, deployment) =>
            {
                Some(SnapshotKind::PreChange)
            }
            _ => None,
        }
    }

    /// Whether the snapshot is one of opsplane's backups of `environment` (tags and identifier).
    pub fn is_ours(&self, environment: &str) -> bool {
        self.kind(environment) == Some(SnapshotKind::Backup)
    }

    /// When the data in the snapshot was taken: `OriginalSnapshotCreateTime`, which a copy inherits from
    /// its source, falling back to `SnapshotCreateTime` when RDS gives none. Retention orders and ages by
    /// this, so a copy is as old as what it copies.
    /// <https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBSnapshot.html>
    pub fn taken_at(&self) -> Option<DateTime<Utc>> {
        self.original_created_at.or(self.created_at)
    }

    /// Whether the snapshot can be restored.
    pub fn is_available(&self) -> bool {
        self.status == "available"
    }
}

/// Why retention keeps a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeepReason {
    /// It does not carry all of opsplane's tags for this environment under the identifier opsplane gives
    /// (a snapshot made by hand, a copy of ours made with "copy tags"): never ours to delete.
    NotOurs,
    /// It is not `available` (still creating, failed, being copied): never deleted mid-flight.
    NotAvailable,
    /// It is younger than `retention_days`.
    NotExpired,
    /// It is among the newest `keep_last` available snapshots of its instance.
    AmongNewest,
    /// A running drill or a pending rollback uses it.
    Referenced,
    /// It has no creation time, so its age is unknown.
    AgeUnknown,
}

impl KeepReason {
    /// The reason's name as reports and outputs show it (its serialized form).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotOurs => "not-ours",
            Self::NotAvailable => "not-available",
            Self::NotExpired => "not-expired",
            Self::AmongNewest => "among-newest",
            Self::Referenced => "referenced",
            Self::AgeUnknown => "age-unknown",
        }
    }
}

/// What retention decided, snapshot by snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionDecision {
    /// Snapshots to delete.
    pub delete: Vec<String>,
    /// Snapshots kept, with the first reason that kept each.
    pub keep: Vec<(String, KeepReason)>,
}

/// Chooses the snapshots to delete.
///
/// A backup snapshot (see [`SnapshotInfo::kind`]) is deleted only if it is available, was taken
/// ([`SnapshotInfo::taken_at`]) more than `retention_days` before `now`, is not among the newest `keep_last`
/// available backup snapshots of its instance, is not in `referenced` and carries no [`TAG_HOLD`].
///
/// A pre-change snapshot of provision is a safety net for one deployment, not a backup: it never counts
/// among the newest `keep_last`, and is deleted once available and taken more than `retention_days` before
/// `now`, unless referenced or held.
///
/// Cross-region copies keep the identifier and tags of their source and inherit its
/// `OriginalSnapshotCreateTime`, so in each region they follow the same rules; the caller visits every
/// region copies were ever made to ([`copy_region_marker_key`]). Everything else is kept, whatever its age.
pub fn select_for_deletion(
    environment: &str,
    snapshots: &[SnapshotInfo],
    policy: &BackupPolicy,
    referenced: &BTreeSet<String>,
    now: DateTime<Utc>,
) -> RetentionDecision {
    // The newest `keep_last` of each instance, counted among our own available backups only, by when their
    // data was taken: neither a foreign snapshot nor a fresh copy must push one of ours out of the
    // protected set.
    let mut by_instance: BTreeMap<&str, Vec<&SnapshotInfo>> = BTreeMap::new();
    for s in snapshots {
        if s.is_ours(environment) && s.is_available() && s.taken_at().is_some() {
            by_instance.entry(s.instance.as_str()).or_default().push(s);
        }
    }
    let mut newest: BTreeSet<&str> = BTreeSet::new();
    for list in by_instance.values_mut() {
        list.sort_by(|a, b| b.taken_at().cmp(&a.taken_at()).then(b.id.cmp(&a.id)));
        newest.extend(
            list.iter()
                .take(policy.keep_last as usize)
                .map(|s| s.id.as_str()),
        );
    }
    let cutoff = now - Duration::days(i64::from(policy.retention_days));
    let mut decision = RetentionDecision::default();
    for s in snapshots {
        let reason = if s.kind(environment).is_none() {
            Some(KeepReason::NotOurs)
        } else if !s.is_available() {
            Some(KeepReason::NotAvailable)
        } else if referenced.contains(&s.id) || s.tags.contains_key(TAG_HOLD) {
            Some(KeepReason::Referenced)
        } else if newest.contains(s.id.as_str()) {
            Some(KeepReason::AmongNewest)
        } else {
            match s.taken_at() {
                None => Some(KeepReason::AgeUnknown),
                Some(at) if at > cutoff => Some(KeepReason::NotExpired),
                Some(_) => None,
            }
        };
        match reason {
            Some(r) => decision.keep.push((s.id.clone(), r)),
            None => decision.delete.push(s.id.clone()),
        }
    }
    decision
}

/// One object of a backup, with its digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestObject {
    /// S3 key in the state bucket.
    pub key: String,
    /// Hex SHA-256 of the object's bytes.
    pub sha256: String,
    /// Size in bytes.
    pub bytes: u64,
}

/// One snapshot of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestSnapshot {
    /// The DB instance.
    pub instance: String,
    /// The snapshot identifier.
    pub snapshot_id: String,
    /// The snapshot's ARN.
    pub arn: String,
    /// When RDS created it.
    pub created_at: Option<DateTime<Utc>>,
    /// The copy in the spec's second region, as `region:snapshot-id`.
    #[serde(default)]
    pub copy: Option<String>,
    /// The snapshot's description as exported (key and SHA-256 of the JSON object).
    pub description: ManifestObject,
}

/// `backups/<env>/<ts>/manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The environment.
    pub environment: String,
    /// The backup run's id.
    pub backup_id: String,
    /// The run's timestamp (as in the keys).
    pub ts: String,
    /// When the manifest was written.
    pub created_at: DateTime<Utc>,
    /// Every snapshot.
    pub snapshots: Vec<ManifestSnapshot>,
    /// Every Redis snapshot (`instance` names the replication group; `copy` the S3 export, `s3://...`).
    #[serde(default)]
    pub caches: Vec<ManifestSnapshot>,
    /// Every other object (the EKS export).
    pub objects: Vec<ManifestObject>,
}

impl Manifest {
    /// Every object the manifest vouches for: the snapshot descriptions and the other objects.
    pub fn all_objects(&self) -> impl Iterator<Item = &ManifestObject> {
        self.snapshots
            .iter()
            .chain(self.caches.iter())
            .map(|s| &s.description)
            .chain(self.objects.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-06-01T00:00:00Z".parse().unwrap()
    }

    /// A backup snapshot of prod named by its backup id `name` (its identifier is opsplane's for it).
    fn ours(name: &str, instance: &str, days_old: i64) -> SnapshotInfo {
        SnapshotInfo {
            id: snapshot_identifier(instance, name),
            instance: instance.into(),
            created_at: Some(now() - Duration::days(days_old)),
            original_created_at: None,
            status: "available".into(),
            tags: [
                (TAG_MANAGED_BY, MANAGED_BY_VALUE),
                (TAG_ENVIRONMENT, "prod"),
                (TAG_BACKUP_ID, name),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        }
    }

    /// A pre-change snapshot of prod taken by provision for deployment `name`.
    fn pre_change(name: &str, instance: &str, days_old: i64) -> SnapshotInfo {
        let mut s = ours(name, instance, days_old);
        s.id = pre_change_snapshot_identifier(instance, name);
        s.tags.remove(TAG_BACKUP_ID);
        s.tags.insert(TAG_DEPLOYMENT.into(), name.into());
        s
    }

    fn policy(retention_days: u32, keep_last: u32) -> BackupPolicy {
        BackupPolicy {
            retention_days,
            keep_last,
            ..BackupPolicy::default()
        }
    }

    /// The decision, each snapshot named by the name its test gave it (its backup or deployment id, or its
    /// identifier for a snapshot not named by opsplane's scheme); `refs` by name too.
    fn decide(snaps: &[SnapshotInfo], p: &BackupPolicy, refs: &[&str]) -> RetentionDecision {
        let name = |s: &SnapshotInfo| {
            let backup = format!("opsplane-{}-", s.instance);
            let pre = format!("-{}", s.instance);
            s.id.strip_prefix("opsplane-pre-")
                .and_then(|rest| rest.strip_suffix(&pre))
                .or_else(|| s.id.strip_prefix(&backup))
                .unwrap_or(&s.id)
                .to_owned()
        };
        let names: BTreeMap<String, String> =
            snaps.iter().map(|s| (s.id.clone(), name(s))).collect();
        let refs = snaps
            .iter()
            .filter(|s| refs.contains(&name(s).as_str()))
            .map(|s| s.id.clone())
            .collect();
        let d = select_for_deletion("prod", snaps, p, &refs, now());
        RetentionDecision {
            delete: d.delete.iter().map(|id| names[id].clone()).collect(),
            keep: d
                .keep
                .iter()
                .map(|(id, r)| (names[id].clone(), *r))
                .collect(),
        }
    }

    fn reason(d: &RetentionDecision, id: &str) -> Option<KeepReason> {
        d.keep.iter().find(|(k, _)| k == id).map(|(_, r)| *r)
    }

    #[test]
    fn all_expired_keeps_the_newest_keep_last_per_instance() {
        let snaps: Vec<_> = (0..5)
            .map(|i| ours(&format!("a-{i}"), "a", 100 + i))
            .chain((0..2).map(|i| ours(&format!("b-{i}"), "b", 200 + i)))
            .collect();
        let d = decide(&snaps, &policy(14, 2), &[]);
        assert_eq!(d.delete, ["a-2", "a-3", "a-4"]);
        assert_eq!(reason(&d, "a-0"), Some(KeepReason::AmongNewest));
        assert_eq!(reason(&d, "a-1"), Some(KeepReason::AmongNewest));
        // Instance b has only keep_last snapshots: both stay however old.
        assert_eq!(reason(&d, "b-0"), Some(KeepReason::AmongNewest));
        assert_eq!(reason(&d, "b-1"), Some(KeepReason::AmongNewest));
    }

    #[test]
    fn young_snapshots_stay_even_beyond_keep_last() {
        let snaps: Vec<_> = (0..4).map(|i| ours(&format!("a-{i}"), "a", i)).collect();
        let d = decide(&snaps, &policy(14, 1), &[]);
        assert!(d.delete.is_empty());
        assert_eq!(reason(&d, "a-3"), Some(KeepReason::NotExpired));
    }

    #[test]
    fn the_retention_boundary_is_exclusive_of_younger() {
        let mut at_cutoff = ours("edge", "a", 14);
        at_cutoff.created_at = Some(now() - Duration::days(14));
        let just_younger = SnapshotInfo {
            created_at: Some(now() - Duration::days(14) + Duration::seconds(1)),
            ..ours("young", "a", 0)
        };
        let newest = ours("new", "a", 0);
        let d = decide(&[at_cutoff, just_younger, newest], &policy(14, 1), &[]);
        assert_eq!(d.delete, ["edge"]);
        assert_eq!(reason(&d, "young"), Some(KeepReason::NotExpired));
    }

    #[test]
    fn foreign_and_untagged_snapshots_are_never_touched() {
        let mut untagged = ours("untagged", "a", 3000);
        untagged.tags.clear();
        let mut other_env = ours("staging-snap", "a", 3000);
        other_env
            .tags
            .insert(TAG_ENVIRONMENT.into(), "staging".into());
        let mut not_managed = ours("hand-made", "a", 3000);
        not_managed
            .tags
            .insert(TAG_MANAGED_BY.into(), "terraform".into());
        let mut no_backup_id = ours("no-id", "a", 3000);
        no_backup_id.tags.remove(TAG_BACKUP_ID);
        let snaps = vec![
            untagged,
            other_env,
            not_managed,
            no_backup_id,
            ours("a-new", "a", 0),
        ];
        let d = decide(&snaps, &policy(1, 1), &[]);
        assert!(d.delete.is_empty(), "{d:?}");
        for id in ["untagged", "staging-snap", "hand-made", "no-id"] {
            assert_eq!(reason(&d, id), Some(KeepReason::NotOurs), "{id}");
        }
    }

    #[test]
    fn foreign_snapshots_do_not_count_towards_keep_last() {
        let mut foreign_newer = ours("foreign", "a", 0);
        foreign_newer.tags.clear();
        let snaps = vec![foreign_newer, ours("ours-old", "a", 500)];
        let d = decide(&snaps, &policy(14, 1), &[]);
        assert!(d.delete.is_empty());
        assert_eq!(reason(&d, "ours-old"), Some(KeepReason::AmongNewest));
    }

    #[test]
    fn referenced_and_held_snapshots_stay() {
        let mut held = ours("held", "a", 400);
        held.tags.insert(TAG_HOLD.into(), "rollback-42".into());
        let snaps = vec![
            ours("new", "a", 0),
            ours("drilled", "a", 300),
            held,
            ours("old", "a", 500),
        ];
        let d = decide(&snaps, &policy(14, 1), &["drilled"]);
        assert_eq!(d.delete, ["old"]);
        assert_eq!(reason(&d, "drilled"), Some(KeepReason::Referenced));
        assert_eq!(reason(&d, "held"), Some(KeepReason::Referenced));
    }

    #[test]
    fn unavailable_snapshots_are_neither_deleted_nor_counted_as_good() {
        let mut creating = ours("creating", "a", 0);
        creating.status = "creating".into();
        let mut failed = ours("failed", "a", 900);
        failed.status = "failed".into();
        let snaps = vec![
            creating,
            failed,
            ours("good-old", "a", 100),
            ours("older", "a", 200),
        ];
        let d = decide(&snaps, &policy(14, 1), &[]);
        // The last good backup is the available one, not the one still being created.
        assert_eq!(reason(&d, "good-old"), Some(KeepReason::AmongNewest));
        assert_eq!(reason(&d, "creating"), Some(KeepReason::NotAvailable));
        assert_eq!(reason(&d, "failed"), Some(KeepReason::NotAvailable));
        assert_eq!(d.delete, ["older"]);
    }

    #[test]
    fn unknown_age_is_kept() {
        let mut unknown = ours("unknown", "a", 0);
        unknown.created_at = None;
        let d = decide(&[unknown, ours("new", "a", 0)], &policy(1, 1), &[]);
        assert_eq!(reason(&d, "unknown"), Some(KeepReason::AgeUnknown));
        assert!(d.delete.is_empty());
    }

    #[test]
    fn every_snapshot_lands_in_exactly_one_list() {
        let snaps: Vec<_> = (0..20)
            .map(|i| {
                ours(
                    &format!("s-{i}"),
                    if i % 2 == 0 { "a" } else { "b" },
                    i * 10,
                )
            })
            .collect();
        for keep_last in 1..5 {
            for days in [1, 14, 100, 1000] {
                let d = decide(&snaps, &policy(days, keep_last), &["s-19"]);
                assert_eq!(d.delete.len() + d.keep.len(), snaps.len());
                assert!(!d.delete.contains(&"s-19".to_string()));
                for inst in ["a", "b"] {
                    let left = snaps
                        .iter()
                        .filter(|s| s.instance == inst && !d.delete.contains(&s.id))
                        .count();
                    assert!(
                        left >= keep_last as usize,
                        "{inst} keeps {left} < {keep_last}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_copy_with_copied_tags_is_not_ours_and_does_not_push_the_newest_out() {
        // The newest real backup is 20 days old; a same-region copy of an older one, made by hand with "copy
        // tags" yesterday, carries every tag under another identifier and a fresh creation time.
        let newest = ours("b-new", "a", 20);
        let older = ours("b-old", "a", 40);
        let mut copy = ours("b-old", "a", 1);
        copy.id = "b-old-copy-by-hand".into();
        copy.original_created_at = older.created_at;
        let d = decide(&[copy, newest, older], &policy(14, 1), &[]);
        assert_eq!(reason(&d, "b-old-copy-by-hand"), Some(KeepReason::NotOurs));
        assert_eq!(reason(&d, "b-new"), Some(KeepReason::AmongNewest));
        assert_eq!(d.delete, ["b-old"]);
    }

    #[test]
    fn order_and_age_follow_the_original_creation_time() {
        // A cross-region copy keeps identifier and tags; its own creation time is the copy's, its
        // OriginalSnapshotCreateTime the source's.
        let mut copied_late = ours("b-1", "a", 1);
        copied_late.original_created_at = Some(now() - Duration::days(60));
        let mut recent = ours("b-2", "a", 30);
        recent.original_created_at = Some(now() - Duration::days(30));
        let d = decide(&[copied_late, recent], &policy(14, 1), &[]);
        assert_eq!(reason(&d, "b-2"), Some(KeepReason::AmongNewest));
        assert_eq!(d.delete, ["b-1"], "60 days old, whenever it was copied");

        // Young by its original time: kept until that is older than retention_days.
        let mut young = ours("b-3", "a", 1);
        young.original_created_at = Some(now() - Duration::days(2));
        let d = decide(&[young, ours("b-4", "a", 0)], &policy(14, 1), &[]);
        assert_eq!(reason(&d, "b-3"), Some(KeepReason::NotExpired));
    }

    #[test]
    fn without_an_original_time_the_creation_time_counts() {
        let mut no_original = ours("b-1", "a", 100);
        no_original.original_created_at = None;
        let d = decide(&[no_original, ours("b-2", "a", 0)], &policy(14, 1), &[]);
        assert_eq!(d.delete, ["b-1"]);
        let mut neither = ours("b-3", "a", 100);
        neither.created_at = None;
        let d = decide(&[neither, ours("b-4", "a", 0)], &policy(14, 1), &[]);
        assert_eq!(reason(&d, "b-3"), Some(KeepReason::AgeUnknown));
    }

    #[test]
    fn tags_under_another_identifier_are_not_ours() {
        let mut renamed = ours("b-1", "a", 300);
        renamed.id = "opsplane-a-b-2".into();
        let mut other_instance = ours("b-3", "a", 300);
        other_instance.instance = "b".into();
        let mut pre_as_backup = pre_change("d-1", "a", 300);
        pre_as_backup
            .tags
            .insert(TAG_BACKUP_ID.into(), "d-1".into());
        let snaps = [renamed, other_instance, pre_as_backup, ours("new", "a", 0)];
        let d = decide(&snaps, &policy(1, 1), &[]);
        assert!(d.delete.is_empty(), "{d:?}");
        assert_eq!(d.keep.len(), 4);
        assert!(
            d.keep
                .iter()
                .filter(|(n, _)| n != "new")
                .all(|(_, r)| *r == KeepReason::NotOurs)
        );
    }

    #[test]
    fn pre_change_snapshots_age_out_and_never_count_as_backups() {
        let snaps = [
            pre_change("d-old", "a", 30),
            pre_change("d-young", "a", 3),
            pre_change("d-held", "a", 300),
            pre_change("d-drilled", "a", 300),
            ours("b-1", "a", 100),
            ours("b-2", "a", 200),
        ];
        let mut snaps = snaps.to_vec();
        snaps[2].tags.insert(TAG_HOLD.into(), "rollback-7".into());
        let mut creating = pre_change("d-creating", "a", 300);
        creating.status = "creating".into();
        snaps.push(creating);
        let mut other_env = pre_change("d-staging", "a", 300);
        other_env
            .tags
            .insert(TAG_ENVIRONMENT.into(), "staging".into());
        snaps.push(other_env);
        let d = decide(&snaps, &policy(14, 1), &["d-drilled"]);
        // The newest backup is b-1 although pre-change snapshots are newer: they are not backups.
        assert_eq!(reason(&d, "b-1"), Some(KeepReason::AmongNewest));
        assert_eq!(reason(&d, "d-young"), Some(KeepReason::NotExpired));
        assert_eq!(reason(&d, "d-held"), Some(KeepReason::Referenced));
        assert_eq!(reason(&d, "d-drilled"), Some(KeepReason::Referenced));
        assert_eq!(reason(&d, "d-creating"), Some(KeepReason::NotAvailable));
        assert_eq!(reason(&d, "d-staging"), Some(KeepReason::NotOurs));
        let mut deleted = d.delete.clone();
        deleted.sort();
        assert_eq!(deleted, ["b-2", "d-old"]);
    }

    #[test]
    fn copy_region_markers_live_under_the_environment() {
        assert_eq!(
            copy_region_marker_key("prod", "eu-west-1"),
            "backups/prod/copy-regions/eu-west-1"
        );
        assert!(
            copy_region_marker_key("prod", "eu-west-1").starts_with(&copy_region_prefix("prod"))
        );
        assert_eq!(
            pre_change_snapshot_identifier("db-1", "0a1b"),
            "opsplane-pre-0a1b-db-1"
        );
    }

    #[test]
    fn keys_and_identifiers() {
        let at: DateTime<Utc> = "2026-03-04T05:06:07.089Z".parse().unwrap();
        assert_eq!(key_timestamp(at), "20260304T050607089Z");
        let whole: DateTime<Utc> = "2026-03-04T05:06:07Z".parse().unwrap();
        assert_eq!(key_timestamp(whole), "20260304T050607000Z");
        assert_eq!(
            manifest_key("prod", "20260304T050607Z"),
            "backups/prod/20260304T050607Z/manifest.json"
        );
        assert_eq!(snapshot_identifier("db-1", "abc"), "opsplane-db-1-abc");
    }
}
