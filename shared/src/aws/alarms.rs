//! CloudWatch alarms: which of an environment's alarms are firing now (`DescribeAlarms`, paginated).
//!
//! A deployment's bake reads them to decide whether the change it just made may become the last known good.

use aws_sdk_cloudwatch::types::{AlarmType, StateValue};
use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::aws::is_transient;
use crate::domain::spec::AlarmMapping;
use crate::error::{BoxError, OpsError};

/// A CloudWatch call failed.
#[derive(Debug, Error)]
pub enum AlarmsError {
    /// CloudWatch throttled the call or failed on its side (5xx), after the SDK's retries.
    #[error("CloudWatch throttled DescribeAlarms")]
    Throttled(#[source] BoxError),
    /// Any other failure.
    #[error("CloudWatch DescribeAlarms failed")]
    Aws(#[source] BoxError),
}

impl From<AlarmsError> for OpsError {
    fn from(err: AlarmsError) -> Self {
        match err {
            AlarmsError::Throttled(source) => OpsError::Throttled {
                operation: "DescribeAlarms",
                source,
            },
            AlarmsError::Aws(source) => OpsError::Aws {
                operation: "DescribeAlarms",
                source,
            },
        }
    }
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
                let page = page.map_err(|e| {
                    if is_transient(&e) {
                        AlarmsError::Throttled(Box::new(e))
                    } else {
                        AlarmsError::Aws(Box::new(e))
                    }
                })?;
                // Filtered here too: a service that answers the names without the state filter (moto
                // does) must not turn an OK alarm into a firing one.
                let metric = page.metric_alarms().iter().map(|a| {
                    let state = (
                        a.state_value(),
                        a.state_updated_timestamp(),
                        a.state_reason(),
                    );
                    (a.alarm_name(), state)
                });
                let composite = page.composite_alarms().iter().map(|a| {
                    let state = (
                        a.state_value(),
                        a.state_updated_timestamp(),
                        a.state_reason(),
                    );
                    (a.alarm_name(), state)
                });
                for (name, (value, since, reason)) in metric.chain(composite) {
                    if value == Some(&StateValue::Alarm) {
                        out.push(Firing {
                            name: name.unwrap_or_default().to_owned(),
                            since: since.and_then(to_chrono),
                            reason: reason.map(str::to_owned),
                        });
                    }
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out.dedup_by(|a, b| a.name == b.name);
        Ok(out)
    }
}

fn to_chrono(t: &aws_sdk_cloudwatch::primitives::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(t.to_millis().ok()?)
}
