//! CloudWatch alarms: which of an environment's alarms are firing now (`DescribeAlarms`, paginated), one
//! alarm's state, and the alarm mute rules muting an alarm now (`ListAlarmMuteRules`).
//!
//! A deployment's bake reads them to decide whether the change it just made may become the last known good;
//! a rollback reads whether CloudWatch mutes the alarm that started it, and whether it still holds.

use aws_sdk_cloudwatch::config::http::HttpResponse;
use aws_sdk_cloudwatch::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_cloudwatch::operation::describe_alarms::DescribeAlarmsOutput;
use aws_sdk_cloudwatch::types::{AlarmMuteRuleStatus, AlarmType, StateValue};
use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::aws::is_transient;
use crate::domain::spec::AlarmMapping;
use crate::error::{BoxError, OpsError};

/// A CloudWatch call failed.
#[derive(Debug, Error)]
pub enum AlarmsError {
    /// CloudWatch throttled the call or failed on its side (5xx), after the SDK's retries.
    #[error("CloudWatch throttled {operation}")]
    Throttled {
        /// The CloudWatch operation.
        operation: &'static str,
        /// The SDK's error.
        #[source]
        source: BoxError,
    },
    /// Any other failure.
    #[error("CloudWatch {operation} failed")]
    Aws {
        /// The CloudWatch operation.
        operation: &'static str,
        /// The SDK's error.
        #[source]
        source: BoxError,
    },
}

impl AlarmsError {
    fn sdk<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        if is_transient(&err) {
            Self::Throttled {
                operation,
                source: Box::new(err),
            }
        } else {
            Self::Aws {
                operation,
                source: Box::new(err),
            }
        }
    }
}

impl From<AlarmsError> for OpsError {
    fn from(err: AlarmsError) -> Self {
        match err {
            AlarmsError::Throttled { operation, source } => {
                OpsError::Throttled { operation, source }
            }
            AlarmsError::Aws { operation, source } => OpsError::Aws { operation, source },
        }
    }
}

/// One alarm's state now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmState {
    /// `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub value: String,
    /// When it entered that state.
    pub since: Option<DateTime<Utc>>,
}

/// An alarm in the `ALARM` state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firing {
    /// Its name.
    pub name: String,
    /// When it went to `ALARM`.
    pub since: Option<DateTime<Utc>>,
    /// Its state reason.
    pub reason: Option<String>,
}

/// The CloudWatch adapter.
#[derive(Debug, Clone)]
pub struct Alarms {
    client: aws_sdk_cloudwatch::Client,
}

impl Alarms {
    /// The adapter over `client`.
    pub fn new(client: aws_sdk_cloudwatch::Client) -> Self {
        Self { client }
    }

    /// The alarms `mapping` names (by name or prefix), metric and composite, that are in `ALARM` now, by
    /// name. One `DescribeAlarms` for the names and one per prefix, each through the SDK's paginator.
    pub async fn firing(&self, mapping: &AlarmMapping) -> Result<Vec<Firing>, AlarmsError> {
        let mut out = Vec::new();
        let mut asks = Vec::new();
        if !mapping.names.is_empty() {
            asks.push(
                self.client
                    .describe_alarms()
                    .set_alarm_names(Some(mapping.names.clone())),
            );
        }
        for prefix in &mapping.prefixes {
            asks.push(self.client.describe_alarms().alarm_name_prefix(prefix));
        }
        for ask in asks {
            let mut pages = ask
                .state_value(StateValue::Alarm)
                .alarm_types(AlarmType::MetricAlarm)
                .alarm_types(AlarmType::CompositeAlarm)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| AlarmsError::sdk("DescribeAlarms", e))?;
                // Filtered here too: a service that answers the names without the state filter (moto
                // does) must not turn an OK alarm into a firing one.
                out.extend(
                    seen(&page)
                        .filter(|a| a.value == Some(&StateValue::Alarm))
                        .map(|a| Firing {
                            name: a.name.to_owned(),
                            since: a.since,
                            reason: a.reason.map(str::to_owned),
                        }),
                );
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out.dedup_by(|a, b| a.name == b.name);
        Ok(out)
    }

    /// Alarm `name`'s state now (metric or composite); `None` when no such alarm exists.
    pub async fn state(&self, name: &str) -> Result<Option<AlarmState>, AlarmsError> {
        let page = self
            .client
            .describe_alarms()
            .alarm_names(name)
            .alarm_types(AlarmType::MetricAlarm)
            .alarm_types(AlarmType::CompositeAlarm)
            .send()
            .await
            .map_err(|e| AlarmsError::sdk("DescribeAlarms", e))?;
        Ok(seen(&page).find(|a| a.name == name).map(|a| AlarmState {
            value: a.value.map(|v| v.as_str().to_owned()).unwrap_or_default(),
            since: a.since,
        }))
    }

    /// The names of the alarm mute rules muting alarm `name` now (`ACTIVE`, through the SDK's paginator).
    pub async fn muting(&self, name: &str) -> Result<Vec<String>, AlarmsError> {
        let mut pages = self
            .client
            .list_alarm_mute_rules()
            .alarm_name(name)
            .statuses(AlarmMuteRuleStatus::Active)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AlarmsError::sdk("ListAlarmMuteRules", e))?;
            for rule in page.alarm_mute_rule_summaries() {
                // Filtered here too, as for DescribeAlarms: only a rule muting now holds the alarm back.
                if rule.status() != Some(&AlarmMuteRuleStatus::Active) {
                    continue;
                }
                let arn = rule.alarm_mute_rule_arn().unwrap_or_default();
                out.push(arn.rsplit(':').next().unwrap_or(arn).to_owned());
            }
        }
        Ok(out)
    }
}

/// One alarm of a `DescribeAlarms` answer, metric or composite alike.
struct Seen<'a> {
    name: &'a str,
    value: Option<&'a StateValue>,
    since: Option<DateTime<Utc>>,
    reason: Option<&'a str>,
}

/// Every alarm of a `DescribeAlarms` page: its metric alarms, then its composite ones.
fn seen(page: &DescribeAlarmsOutput) -> impl Iterator<Item = Seen<'_>> {
    let metric = page.metric_alarms().iter().map(|a| Seen {
        name: a.alarm_name().unwrap_or_default(),
        value: a.state_value(),
        since: a.state_updated_timestamp().and_then(to_chrono),
        reason: a.state_reason(),
    });
    let composite = page.composite_alarms().iter().map(|a| Seen {
        name: a.alarm_name().unwrap_or_default(),
        value: a.state_value(),
        since: a.state_updated_timestamp().and_then(to_chrono),
        reason: a.state_reason(),
    });
    metric.chain(composite)
}

fn to_chrono(t: &aws_sdk_cloudwatch::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(t.to_millis().ok()?)
}
