//! Alarms CloudWatch mutes: an alarm mute rule (planned maintenance) holds an alarm's actions back during
//! its window, and CloudWatch runs them at the window's end only if the alarm is still in the state it was
//! muted in. A rollback does the same: nothing while muted, then `AwaitMuteEnd` resolves the alarm again
//! (`after_mute`) and it acts only if it is still in ALARM.
//! <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-mute-rules-behaviour.html>

use opsplane_shared::OpsError;
use serde_json::Value;

use crate::{Deps, Target};

/// Whether CloudWatch mutes `alarm` now, from its alarm mute rules (`ListAlarmMuteRules`) and the event's
/// `muteDetail`: `Muted` before the window ends; after it (`after_mute`), `NotReady` while a rule still
/// mutes it, and `HeldBack` unless the alarm is still in ALARM (`DescribeAlarms`), as CloudWatch runs a
/// muted alarm's actions at the end of the window only when it remains in the state it was muted in.
/// <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-mute-rules-behaviour.html>
pub(crate) async fn muted(
    deps: &Deps,
    alarm: &str,
    mute_detail: Option<&Value>,
    after_mute: bool,
) -> Result<Option<Target>, OpsError> {
    let rules = deps.alarms.muting(alarm).await?;
    if !after_mute {
        return Ok(muted_by(alarm, &rules, mute_detail).map(Target::Muted));
    }
    if !rules.is_empty() {
        return Err(OpsError::NotReady(format!(
            "{alarm} is still muted by alarm mute rule {}",
            rules.join(", ")
        )));
    }
    Ok(match deps.alarms.state(alarm).await? {
        Some(now) if now.value == "ALARM" => None,
        Some(now) => Some(Target::HeldBack(format!(
            "{alarm} left ALARM while muted (it is {} now): nothing rolled back",
            now.value
        ))),
        None => Some(Target::HeldBack(format!(
            "{alarm} no longer exists after its mute window: nothing rolled back"
        ))),
    })
}

/// Why `alarm` counts as muted when it fires: a mute rule muting it now (`rules`), or its event's
/// `muteDetail`; `None` when neither.
fn muted_by(alarm: &str, rules: &[String], mute_detail: Option<&Value>) -> Option<String> {
    let by = if !rules.is_empty() {
        format!("alarm mute rule {}", rules.join(", "))
    } else if mute_detail.is_some_and(|m| !m.is_null()) {
        "its event's muteDetail".to_owned()
    } else {
        return None;
    };
    Some(format!(
        "CloudWatch mutes {alarm} ({by}): nothing is done before the mute window ends, when it acts only if still in ALARM"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_alarm_is_muted_by_an_active_rule_or_by_its_events_mute_detail() {
        let rules = vec!["prod-maintenance".to_owned()];
        let why = muted_by("prod-5xx", &rules, None).unwrap();
        assert!(why.contains("alarm mute rule prod-maintenance"), "{why}");
        let detail = json!({"muteRule": "prod-maintenance"});
        let why = muted_by("prod-5xx", &[], Some(&detail)).unwrap();
        assert!(why.contains("muteDetail"), "{why}");
        assert_eq!(muted_by("prod-5xx", &[], None), None);
        assert_eq!(muted_by("prod-5xx", &[], Some(&Value::Null)), None);
    }
}
