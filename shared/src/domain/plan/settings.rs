//! An existing instance's placement, storage, key and maintenance settings against the spec: what RDS
//! changes in place (and can change back), what it changes only once in a while, and what it never changes.
//! Rules from ModifyDBInstance's reference and the RDS User Guide's "Modifying an Amazon RDS DB instance".

use super::actual::InstanceSettings;
use super::change::{Change, ChangeKind, Finding, Resource, Severity, change};
use crate::domain::spec::RdsSpec;

/// Why a storage change is not reversible at once: "After you modify the storage, you can't make further
/// storage modifications for either six hours or while the storage optimization is in progress,
/// whichever is longer" (RDS User Guide, "Working with storage").
const STORAGE_COOL_DOWN: &str = "after a storage change RDS refuses another for six hours or until storage optimization ends, whichever is longer";

/// A setting, its value now and the value asked for, compared as RDS spells them.
struct Setting<'a> {
    field: &'a str,
    have: Option<String>,
    want: Option<String>,
    reversible: bool,
    reason: &'a str,
}

fn text<T: ToString>(v: Option<T>) -> Option<String> {
    v.map(|v| v.to_string())
}

/// Whether the spec's key reference names the key RDS reports by ARN: the ARN itself or its key id. An
/// alias cannot be told from an ARN without asking KMS, so it is taken to match; the existence check
/// before each plan refuses an alias that names no key.
fn same_key(want: &str, have_arn: &str) -> bool {
    want.starts_with("alias/")
        || want == have_arn
        || have_arn
            .rsplit_once("key/")
            .is_some_and(|(_, id)| id == want)
}

/// The changes and findings that bring `have` to `db`'s settings.
pub(super) fn plan(
    r: &Resource,
    db: &RdsSpec,
    have: &InstanceSettings,
) -> (Vec<Change>, Vec<Finding>) {
    let mut findings = Vec::new();
    if let (Some(want), Some(key)) = (&db.kms_key_id, &have.kms_key_id)
        && !same_key(want, key)
    {
        findings.push(Finding {
            severity: Severity::Block,
            resource: r.clone(),
            rule: "storage-key".to_owned(),
            message: format!(
                "storage is encrypted with {key} and the spec asks {want}: RDS cannot change an instance's key; restore a snapshot copied with the new key instead"
            ),
        });
    }
    let mut groups = db.vpc_security_group_ids.clone();
    groups.sort();
    let lower = |v: &Option<String>| v.as_ref().map(|s| s.to_ascii_lowercase());
    let settings = [
        Setting {
            field: "db_subnet_group",
            have: have.db_subnet_group.clone(),
            want: db.db_subnet_group.clone(),
            reversible: true,
            reason: "RDS moves the instance to the new subnet group (an outage while it moves) and can move it back",
        },
        Setting {
            field: "vpc_security_group_ids",
            have: Some(have.vpc_security_group_ids.join(",")),
            want: (!groups.is_empty()).then(|| groups.join(",")),
            reversible: true,
            reason: "security groups change at once and can be changed back",
        },
        Setting {
            field: "parameter_group",
            have: have.parameter_group.clone(),
            want: db.parameter_group.clone(),
            reversible: true,
            reason: "the new group's static parameters take effect at the next reboot; the old group can be set back",
        },
        Setting {
            field: "option_group",
            have: have.option_group.clone(),
            want: db.option_group.clone(),
            reversible: true,
            reason: "an option group can be set back (permanent options excepted)",
        },
        Setting {
            field: "storage_type",
            have: have.storage_type.clone(),
            want: db.storage_type.clone(),
            reversible: false,
            reason: STORAGE_COOL_DOWN,
        },
        Setting {
            field: "iops",
            have: text(have.iops),
            want: text(db.iops),
            reversible: false,
            reason: STORAGE_COOL_DOWN,
        },
        Setting {
            field: "storage_throughput",
            have: text(have.storage_throughput),
            want: text(db.storage_throughput),
            reversible: false,
            reason: STORAGE_COOL_DOWN,
        },
        Setting {
            field: "ca_certificate_identifier",
            have: have.ca_certificate_identifier.clone(),
            want: db.ca_certificate_identifier.clone(),
            reversible: true,
            reason: "the instance restarts to take the new certificate; the old authority can be set back while it is valid",
        },
        Setting {
            field: "backup_window",
            have: have.backup_window.clone(),
            want: db.backup_window.clone(),
            reversible: true,
            reason: "a window can be set back",
        },
        Setting {
            field: "maintenance_window",
            have: lower(&have.maintenance_window),
            want: lower(&db.maintenance_window),
            reversible: true,
            reason: "a window can be set back",
        },
        Setting {
            field: "auto_minor_version_upgrade",
            have: text(have.auto_minor_version_upgrade),
            want: text(db.auto_minor_version_upgrade),
            reversible: true,
            reason: "automatic minor upgrades can be switched back",
        },
        Setting {
            field: "iam_database_authentication",
            have: text(have.iam_database_authentication),
            want: text(db.iam_database_authentication),
            reversible: true,
            reason: "IAM authentication can be switched back",
        },
        Setting {
            field: "performance_insights",
            have: text(have.performance_insights),
            want: text(db.performance_insights),
            reversible: true,
            reason: "Performance Insights can be switched back",
        },
        Setting {
            field: "monitoring_interval",
            have: text(have.monitoring_interval),
            want: text(db.monitoring_interval),
            reversible: true,
            reason: "the monitoring interval can be set back",
        },
    ];
    let changes = settings
        .into_iter()
        .filter_map(|s| {
            let want = s.want?;
            (s.have.as_ref() != Some(&want)).then(|| {
                let from = s.have.filter(|h| !h.is_empty());
                change(
                    r,
                    ChangeKind::Modify,
                    s.field,
                    from,
                    want,
                    s.reversible,
                    s.reason,
                )
            })
        })
        .collect();
    (changes, findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_the_same_by_arn_or_id_and_an_alias_is_not_judged() {
        let arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        assert!(same_key(arn, arn));
        assert!(same_key("1234abcd-12ab-34cd-56ef-1234567890ab", arn));
        assert!(same_key("alias/prod", arn));
        assert!(!same_key("ffffffff-12ab-34cd-56ef-1234567890ab", arn));
    }
}
