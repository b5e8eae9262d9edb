//! The policies of an environment: approvals, which alarms belong to it, backups and DR drills.

use serde::{Deserialize, Serialize};

use super::probe::ProbeSpec;

/// Whether changes wait for a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalPolicy {
    /// Every change waits for approval (irreversible changes always do).
    #[serde(default)]
    pub required: bool,
    /// How long a change waits; no answer in time is a rejection.
    #[serde(default = "default_approval_timeout")]
    pub timeout_minutes: u32,
}

/// One day: a change requested at the end of a working day can still be approved the next morning.
pub const DEFAULT_APPROVAL_TIMEOUT_MINUTES: u32 = 1440;

fn default_approval_timeout() -> u32 {
    DEFAULT_APPROVAL_TIMEOUT_MINUTES
}

impl Default for ApprovalPolicy {
    fn default() -> Self {
        Self {
            required: false,
            timeout_minutes: DEFAULT_APPROVAL_TIMEOUT_MINUTES,
        }
    }
}

/// How a change proves itself, and how far back an alarm reaches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackPolicy {
    /// After its health check a deployment bakes this long, watching the environment's alarms; it becomes
    /// the last known good only when its bake ends with none firing (0: at once).
    #[serde(default)]
    pub bake_minutes: u32,
    /// An alarm this long after the latest deployment finished still blames it and rolls it back; a later
    /// alarm starts no rollback and asks a person (`AlarmWithoutRecentChange`).
    #[serde(default = "default_window")]
    pub window_minutes: u32,
    /// How many known-good deployments are kept to roll back to.
    #[serde(default = "default_keep_known_good")]
    pub keep_known_good: u32,
}

/// An hour: alarms on a smaller class or a slower query usually fire within it.
pub const DEFAULT_ROLLBACK_WINDOW_MINUTES: u32 = 60;
/// Known-good deployments kept by default.
pub const DEFAULT_KEEP_KNOWN_GOOD: u32 = 5;

fn default_window() -> u32 {
    DEFAULT_ROLLBACK_WINDOW_MINUTES
}

fn default_keep_known_good() -> u32 {
    DEFAULT_KEEP_KNOWN_GOOD
}

impl Default for RollbackPolicy {
    fn default() -> Self {
        Self {
            bake_minutes: 0,
            window_minutes: DEFAULT_ROLLBACK_WINDOW_MINUTES,
            keep_known_good: DEFAULT_KEEP_KNOWN_GOOD,
        }
    }
}

/// Which CloudWatch alarms belong to the environment: exact names, or name prefixes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmMapping {
    /// Alarm names.
    #[serde(default)]
    pub names: Vec<String>,
    /// Alarm name prefixes.
    #[serde(default)]
    pub prefixes: Vec<String>,
}

impl AlarmMapping {
    /// Whether the alarm named `alarm` belongs here.
    pub fn matches(&self, alarm: &str) -> bool {
        self.names.iter().any(|n| n == alarm)
            || self.prefixes.iter().any(|p| alarm.starts_with(p.as_str()))
    }
}

/// How opsplane keeps backups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupPolicy {
    /// Snapshots older than this many days may be deleted.
    pub retention_days: u32,
    /// The newest this many available snapshots of each instance are never deleted, whatever their age.
    pub keep_last: u32,
    /// A second region every snapshot is copied to.
    #[serde(default)]
    pub copy_to_region: Option<String>,
    /// The KMS key (ARN, key id or `alias/...`) of `copy_to_region` that encrypts the copies: a KMS key
    /// belongs to one region, so the copy of an encrypted snapshot in another region needs one of that
    /// region (CopyDBSnapshot API reference, KmsKeyId). Required when an instance is encrypted.
    #[serde(default)]
    pub copy_kms_key_id: Option<String>,
    /// An S3 bucket (of this Region, granting ElastiCache access) each Redis snapshot is exported to as
    /// `.rdb` files.
    #[serde(default)]
    pub redis_export_bucket: Option<String>,
}

impl Default for BackupPolicy {
    fn default() -> Self {
        Self {
            retention_days: 14,
            keep_last: 3,
            copy_to_region: None,
            copy_kms_key_id: None,
            redis_export_bucket: None,
        }
    }
}

/// How the environment is drilled and what it must achieve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillPolicy {
    /// Recovery time objective in minutes.
    pub rto_target_minutes: u32,
    /// Recovery point objective in minutes.
    pub rpo_target_minutes: u32,
    /// Instance class of the scratch instance.
    pub instance_class: String,
    /// The drill rotation's period: every RDS instance of the environment is drilled at least once in
    /// this many days by the nightly fleet drill rotation. Absent: the environment is not in the rotation
    /// (its drills run on their own schedule or on demand).
    #[serde(default)]
    pub every_days: Option<u32>,
    /// The SQL probe run against the restored instance.
    #[serde(default)]
    pub probe: Option<ProbeSpec>,
    /// Where the scratch instance is restored: each field given here overrides what is read from the
    /// source instance; all of it is needed when the source cannot be read (a deleted instance).
    #[serde(default)]
    pub placement: Option<DrillPlacement>,
    /// The Redis probe run against the restored replication group (`PING`, and the canary key when
    /// given). Its AUTH token is the source group's (`redis[].auth_token_secret`), its TLS the source's
    /// in-transit encryption.
    #[serde(default)]
    pub redis_probe: Option<RedisProbeSpec>,
}

/// The drill's Redis probe.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisProbeSpec {
    /// A key the application writes with the time of its newest write (RFC 3339, or seconds or
    /// milliseconds since the epoch): read from the restored group, it gives the real RPO.
    #[serde(default)]
    pub canary_key: Option<String>,
}

/// Where a drill restores its scratch instance. The drill reads the source instance's DB subnet group,
/// security groups, parameter group and option group and restores beside it; a field set here wins.
/// The snapshot's KMS key always carries over: a restore takes the key of the snapshot it reads
/// (RestoreDBInstanceFromDBSnapshot API reference).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillPlacement {
    /// The DB subnet group (in the probe's VPC, for the probe to reach the scratch instance).
    #[serde(default)]
    pub db_subnet_group: Option<String>,
    /// The VPC security groups (one of them must admit the probe on the instance's port).
    #[serde(default)]
    pub vpc_security_group_ids: Vec<String>,
    /// The DB parameter group.
    #[serde(default)]
    pub parameter_group: Option<String>,
    /// The option group.
    #[serde(default)]
    pub option_group: Option<String>,
}
