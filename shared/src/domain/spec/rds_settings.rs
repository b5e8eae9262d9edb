//! The checks on an RDS instance's placement, storage, key and maintenance settings: their shapes and the
//! combinations RDS refuses (CreateDBInstance's and ModifyDBInstance's constraints), each naming the field.

use super::error::SpecError;
use super::resources::RdsSpec;
use crate::domain::arn::validate_kms_key_arn;

/// RDS's storage types.
const STORAGE_TYPES: [&str; 5] = ["gp2", "gp3", "io1", "io2", "standard"];
/// Enhanced Monitoring's intervals, seconds (0: off).
const MONITORING_INTERVALS: [u32; 7] = [0, 1, 5, 10, 15, 30, 60];
/// Below this much gp3 storage, RDS for PostgreSQL gives a fixed baseline (3,000 IOPS, 125 MiB/s) and
/// refuses provisioned IOPS or throughput ("gp3 storage", RDS User Guide).
const GP3_PROVISIONED_FROM_GB: u32 = 400;
/// The shortest backup or maintenance window RDS accepts, minutes.
const SHORTEST_WINDOW_MINUTES: u32 = 30;
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const MINUTES_PER_DAY: u32 = 24 * 60;
const MINUTES_PER_WEEK: u32 = 7 * MINUTES_PER_DAY;

/// Whether `id` has the shape of a VPC security group id: `sg-` and 8 or 17 lowercase hex digits.
pub(super) fn is_security_group_id(id: &str) -> bool {
    id.strip_prefix("sg-").is_some_and(|hex| {
        matches!(hex.len(), 8 | 17)
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Whether `key` names a KMS key as RDS accepts one: its ARN, its key id (a UUID, or `mrk-` and 32 hex
/// digits for a multi-Region key) or `alias/<name>`.
pub(super) fn is_key_reference(key: &str) -> bool {
    let alias = key.strip_prefix("alias/").is_some_and(|a| !a.is_empty());
    let uuid = key.len() == 36 && key.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    let multi_region = key
        .strip_prefix("mrk-")
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
    alias || uuid || multi_region || validate_kms_key_arn(key).is_ok()
}

/// A group name as RDS takes it: 1 to 255 letters, digits, hyphens, underscores and periods.
fn check_group_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{name}\" is not a group name: 1 to 255 letters, digits, '-', '_' and '.'"
        ))
    }
}

/// `hh24:mi` as minutes of the day.
fn minute_of_day(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// `ddd:hh24:mi` as minutes of the week from Monday 00:00.
fn minute_of_week(text: &str) -> Option<u32> {
    let (day, time) = text.split_once(':')?;
    let day = DAYS.iter().position(|d| d.eq_ignore_ascii_case(day))?;
    Some(u32::try_from(day).ok()? * MINUTES_PER_DAY + minute_of_day(time)?)
}

/// A window's start and length in minutes, from `start-end` read by `at` in a cycle of `cycle` minutes.
fn window(text: &str, at: fn(&str) -> Option<u32>, cycle: u32) -> Option<(u32, u32)> {
    let (start, end) = text.split_once('-')?;
    let (start, end) = (at(start)?, at(end)?);
    Some((start, (end + cycle - start) % cycle))
}

/// The daily backup window, `(start, length)` in minutes of the day.
fn backup_window(text: &str) -> Result<(u32, u32), String> {
    match window(text, minute_of_day, MINUTES_PER_DAY) {
        Some((start, len)) if len >= SHORTEST_WINDOW_MINUTES => Ok((start, len)),
        Some(_) => Err(format!(
            "\"{text}\" is shorter than {SHORTEST_WINDOW_MINUTES} minutes"
        )),
        None => Err(format!(
            "\"{text}\" is not a window: hh24:mi-hh24:mi in UTC, e.g. \"03:00-03:30\""
        )),
    }
}

/// The weekly maintenance window, `(start, length)` in minutes of the week.
fn maintenance_window(text: &str) -> Result<(u32, u32), String> {
    match window(text, minute_of_week, MINUTES_PER_WEEK) {
        Some((start, len)) if len >= SHORTEST_WINDOW_MINUTES => Ok((start, len)),
        Some(_) => Err(format!(
            "\"{text}\" is shorter than {SHORTEST_WINDOW_MINUTES} minutes"
        )),
        None => Err(format!(
            "\"{text}\" is not a window: ddd:hh24:mi-ddd:hh24:mi in UTC, e.g. \"sun:04:00-sun:04:30\""
        )),
    }
}

/// Whether the daily backup window meets the weekly maintenance window on some day.
fn overlap((b_start, b_len): (u32, u32), (m_start, m_len): (u32, u32)) -> bool {
    (0..7).any(|day| {
        let start = day * MINUTES_PER_DAY + b_start;
        // Both intervals on the week's circle: does either start inside the other?
        let inside = |point: u32, from: u32, len: u32| {
            (point + MINUTES_PER_WEEK - from) % MINUTES_PER_WEEK < len
        };
        inside(start, m_start, m_len) || inside(m_start, start % MINUTES_PER_WEEK, b_len)
    })
}

fn check_storage(db: &RdsSpec) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let kind = db.storage_type.as_deref();
    if let Some(kind) = kind
        && !STORAGE_TYPES.contains(&kind)
    {
        out.push((
            "storage_type",
            format!(
                "\"{kind}\" is not a storage type: {}",
                STORAGE_TYPES.join(", ")
            ),
        ));
        return out;
    }
    let provisioned_gp3 = |field: &'static str, out: &mut Vec<(&'static str, String)>| {
        match db.allocated_storage_gb {
            Some(gb) if gb >= GP3_PROVISIONED_FROM_GB => {}
            _ => out.push((
                field,
                format!(
                    "gp3 below {GP3_PROVISIONED_FROM_GB} GiB has a fixed baseline: set allocated_storage_gb to {GP3_PROVISIONED_FROM_GB} or more, or remove {field}"
                ),
            )),
        }
    };
    match (kind, db.iops) {
        (Some("io1" | "io2"), None) => out.push((
            "iops",
            "provisioned IOPS storage needs iops (1000 to 256000)".to_owned(),
        )),
        (Some("io1" | "io2"), Some(iops)) if !(1_000..=256_000).contains(&iops) => {
            out.push(("iops", format!("{iops} is out of range: 1000 to 256000")));
        }
        (Some("gp3"), Some(iops)) if !(3_000..=64_000).contains(&iops) => {
            out.push((
                "iops",
                format!("{iops} is out of range for gp3: 3000 to 64000"),
            ));
        }
        (Some("gp3"), Some(_)) => provisioned_gp3("iops", &mut out),
        (_, Some(_)) if !matches!(kind, Some("io1" | "io2" | "gp3")) => out.push((
            "iops",
            "only io1, io2 and gp3 storage take iops: set storage_type, or remove iops".to_owned(),
        )),
        _ => {}
    }
    match (kind, db.storage_throughput) {
        (Some("gp3"), Some(mibs)) if !(125..=4_000).contains(&mibs) => out.push((
            "storage_throughput",
            format!("{mibs} is out of range: 125 to 4000 MiB/s"),
        )),
        (Some("gp3"), Some(_)) => provisioned_gp3("storage_throughput", &mut out),
        (_, Some(_)) => out.push((
            "storage_throughput",
            "only gp3 storage takes a throughput: set storage_type: gp3, or remove storage_throughput"
                .to_owned(),
        )),
        _ => {}
    }
    out
}

fn check_windows(db: &RdsSpec) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let backup = db.backup_window.as_deref().map(backup_window);
    let maintenance = db.maintenance_window.as_deref().map(maintenance_window);
    if let Some(Err(r)) = &backup {
        out.push(("backup_window", r.clone()));
    }
    if let Some(Err(r)) = &maintenance {
        out.push(("maintenance_window", r.clone()));
    }
    if let (Some(Ok(b)), Some(Ok(m))) = (backup, maintenance)
        && overlap(b, m)
    {
        out.push((
            "maintenance_window",
            "overlaps backup_window: RDS requires the two apart".to_owned(),
        ));
    }
    out
}

fn check_identity(db: &RdsSpec) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(key) = &db.kms_key_id {
        if !is_key_reference(key) {
            out.push((
                "kms_key_id",
                format!("\"{key}\" is not a KMS key: use its ARN, its key id or alias/<name>"),
            ));
        } else if db.storage_encrypted == Some(false) {
            out.push((
                "kms_key_id",
                "a key encrypts storage, and storage_encrypted is false: set it to true, or remove kms_key_id".to_owned(),
            ));
        }
    }
    if let Some(interval) = db.monitoring_interval {
        if !MONITORING_INTERVALS.contains(&interval) {
            out.push((
                "monitoring_interval",
                format!("{interval} is not an interval: 0 (off), 1, 5, 10, 15, 30 or 60 seconds"),
            ));
        } else if interval > 0 && db.monitoring_role_arn.is_none() {
            out.push((
                "monitoring_role_arn",
                "Enhanced Monitoring publishes with a role: set monitoring_role_arn, or monitoring_interval: 0".to_owned(),
            ));
        }
    }
    if let Some(role) = &db.monitoring_role_arn
        && !(role.starts_with("arn:aws") && role.contains(":iam::") && role.contains(":role/"))
    {
        out.push((
            "monitoring_role_arn",
            format!("\"{role}\" is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)"),
        ));
    }
    if let Some(ca) = &db.ca_certificate_identifier
        && !ca.starts_with("rds-ca-")
    {
        out.push((
            "ca_certificate_identifier",
            format!("\"{ca}\" is not an RDS certificate authority (e.g. rds-ca-rsa2048-g1)"),
        ));
    }
    out
}

fn check_placement(db: &RdsSpec) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (field, name) in [
        ("db_subnet_group", &db.db_subnet_group),
        ("parameter_group", &db.parameter_group),
        ("option_group", &db.option_group),
    ] {
        if let Some(Err(r)) = name.as_deref().map(check_group_name) {
            out.push((field, r));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for group in &db.vpc_security_group_ids {
        if !is_security_group_id(group) {
            out.push((
                "vpc_security_group_ids",
                format!("\"{group}\" is not a security group id (sg- and 8 or 17 hex digits)"),
            ));
        } else if !seen.insert(group) {
            out.push((
                "vpc_security_group_ids",
                format!("\"{group}\" appears twice"),
            ));
        }
    }
    out
}

/// Every problem with the settings of `rds[i]`.
pub(super) fn problems(i: usize, db: &RdsSpec, out: &mut Vec<SpecError>) {
    for (field, reason) in check_placement(db)
        .into_iter()
        .chain(check_identity(db))
        .chain(check_storage(db))
        .chain(check_windows(db))
    {
        out.push(SpecError::invalid(format!("rds[{i}].{field}"), reason));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> RdsSpec {
        let base = "identifier: db\nengine: postgres\ninstance_class: db.t4g.small\n";
        serde_yaml_ng::from_str(&format!("{base}{yaml}")).unwrap()
    }

    fn fields(yaml: &str) -> Vec<String> {
        let mut out = Vec::new();
        problems(0, &spec(yaml), &mut out);
        out.iter().map(|e| e.field().to_owned()).collect()
    }

    #[test]
    fn a_full_placement_passes() {
        let yaml = "db_subnet_group: prod-db\nvpc_security_group_ids: [sg-0123456789abcdef0]\n\
            parameter_group: prod-pg16\noption_group: default.postgres16\nkms_key_id: alias/prod-rds\n\
            storage_encrypted: true\nstorage_type: gp3\nallocated_storage_gb: 500\niops: 12000\n\
            storage_throughput: 500\nca_certificate_identifier: rds-ca-rsa2048-g1\n\
            backup_window: \"03:00-03:30\"\nmaintenance_window: \"sun:04:00-sun:04:30\"\n\
            monitoring_interval: 60\nmonitoring_role_arn: arn:aws:iam::123456789012:role/rds-monitoring\n";
        assert_eq!(fields(yaml), Vec::<String>::new());
    }

    #[test]
    fn each_refused_setting_names_its_field() {
        for (yaml, field) in [
            (
                "vpc_security_group_ids: [default]\n",
                "rds[0].vpc_security_group_ids",
            ),
            ("db_subnet_group: \"a b\"\n", "rds[0].db_subnet_group"),
            ("kms_key_id: my-key\n", "rds[0].kms_key_id"),
            (
                "kms_key_id: alias/k\nstorage_encrypted: false\n",
                "rds[0].kms_key_id",
            ),
            ("storage_type: gp4\n", "rds[0].storage_type"),
            ("storage_type: io2\n", "rds[0].iops"),
            (
                "storage_type: gp3\niops: 12000\nallocated_storage_gb: 100\n",
                "rds[0].iops",
            ),
            (
                "storage_type: gp2\nstorage_throughput: 500\n",
                "rds[0].storage_throughput",
            ),
            ("iops: 3000\n", "rds[0].iops"),
            ("backup_window: \"3am\"\n", "rds[0].backup_window"),
            ("backup_window: \"03:00-03:10\"\n", "rds[0].backup_window"),
            (
                "maintenance_window: \"sun:04:00-sun:04:30\"\nbackup_window: \"04:15-04:45\"\n",
                "rds[0].maintenance_window",
            ),
            ("monitoring_interval: 7\n", "rds[0].monitoring_interval"),
            ("monitoring_interval: 60\n", "rds[0].monitoring_role_arn"),
            (
                "ca_certificate_identifier: letsencrypt\n",
                "rds[0].ca_certificate_identifier",
            ),
        ] {
            assert_eq!(fields(yaml), vec![field.to_owned()], "{yaml}");
        }
    }

    #[test]
    fn windows_meet_across_midnight_and_the_week_end() {
        let week = |t| maintenance_window(t).unwrap();
        let day = |t| backup_window(t).unwrap();
        assert!(overlap(day("23:45-00:30"), week("mon:00:00-mon:00:30")));
        assert!(overlap(day("00:00-00:30"), week("sun:23:50-mon:00:20")));
        assert!(!overlap(day("02:00-02:30"), week("sun:04:00-sun:04:30")));
        assert_eq!(backup_window("23:45-00:30"), Ok((23 * 60 + 45, 45)));
    }
}
