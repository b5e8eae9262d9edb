//! The state store itself: one DynamoDB table (and the archive audit events are copied to), fenced writes of
//! records and observations, and newest-first queries of them.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use chrono::{DateTime, Utc};

use super::archive::AuditArchive;
use super::attr::{to_attr, to_item};
use super::error::StateError;
use super::keys::env_pk;
use super::paging::{Page, PageRequest, TimeRange};
use super::records::{DeploymentRecord, EnvRecord, InForce, LastKnownGood, record_sk};
use crate::aws::Clients;
use crate::clock::{Clock, SystemClock, rfc3339};
use crate::config::Config;

/// The state store over one DynamoDB table, with the S3 archive audit events are also written to.
#[derive(Debug, Clone)]
pub struct StateStore {
    // Seen by the state module's other files, each of which adds the operations on one kind of item.
    pub(super) client: aws_sdk_dynamodb::Client,
    pub(super) table: String,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) audit_archive: Option<AuditArchive>,
}

/// A record as the table item that holds it: its fields, `pk=ENV#<env>` and its sort key.
fn record_item<R: EnvRecord>(record: &R) -> Result<HashMap<String, AttributeValue>, StateError> {
    keyed_item(record, env_pk(record.environment()), record_sk(record))
}

/// `value`'s fields as a table item under `pk` and `sk`.
pub(super) fn keyed_item<T: serde::Serialize>(
    value: &T,
    pk: String,
    sk: String,
) -> Result<HashMap<String, AttributeValue>, StateError> {
    let mut item = to_item(value).map_err(|reason| StateError::Corrupt {
        pk: pk.clone(),
        sk: sk.clone(),
        reason,
    })?;
    item.insert("pk".into(), AttributeValue::S(pk));
    item.insert("sk".into(), AttributeValue::S(sk));
    Ok(item)
}

impl StateStore {
    /// A store over `table`, on the real clock.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            clock: Arc::new(SystemClock),
            audit_archive: None,
        }
    }

    /// Writes `item` as it is, unconditionally (records that are not fenced: observations, approvals,
    /// audit events).
    pub(super) async fn put_item(
        &self,
        item: HashMap<String, AttributeValue>,
    ) -> Result<(), StateError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| StateError::aws("PutItem", e))?;
        Ok(())
    }

    /// One page of `query`'s answer: at most the page's limit of items, from its cursor on.
    pub(super) async fn page<T: serde::de::DeserializeOwned>(
        &self,
        query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
        page: PageRequest,
    ) -> Result<Page<T>, StateError> {
        let cursor = page.cursor.as_ref().map(|c| c.to_key()).transpose()?;
        let out = query
            .set_limit(page.limit.map(|l| l.min(i32::MAX as u32) as i32))
            .set_exclusive_start_key(cursor)
            .send()
            .await
            .map_err(|e| StateError::aws("Query", e))?;
        Page::from_query(&out)
    }

    /// The store of `cfg`'s table, copying audit events to `cfg`'s bucket with `cfg`'s audit settings.
    pub fn from_config(cfg: &Config, clients: &Clients) -> Self {
        Self::new(clients.dynamodb.clone(), cfg.table_name.clone()).with_audit_archive(
            AuditArchive::new(clients.s3.clone(), cfg.bucket_name.clone(), cfg.audit),
        )
    }

    /// The same store also writing every audit event to `archive` (S3, Object Lock).
    pub fn with_audit_archive(mut self, archive: AuditArchive) -> Self {
        self.audit_archive = Some(archive);
        self
    }

    /// The archive audit events are copied to, if any.
    pub fn audit_archive(&self) -> Option<&AuditArchive> {
        self.audit_archive.as_ref()
    }

    /// Now, by this store's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The same store reading time from `clock` (audit timestamps, day partitions).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    pub(crate) fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.client
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Writes (creates or replaces) `record`, fenced by `token`: fails with [`StateError::Fenced`], writing
    /// nothing, when a newer token has mutated the environment or has been issued by its lock.
    pub async fn put<R: EnvRecord>(&self, record: &R, token: u64) -> Result<(), StateError> {
        let environment = record.environment().to_owned();
        let item = record_item(record)?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()
            .expect("table and item are set");
        self.fenced_write(
            &environment,
            token,
            vec![TransactWriteItem::builder().put(put).build()],
            Vec::new(),
        )
        .await?;
        tracing::info!(
            environment,
            kind = R::PREFIX,
            id = record.id(),
            token,
            "record written"
        );
        Ok(())
    }

    /// Records a deployment's outcome in one fenced transaction: the record, the spec version now in force
    /// and, when it proved good, the known-good history (newest first; its first is the new last known
    /// good). Either all of it is written or, for a stale token, none.
    pub async fn record_deployment(
        &self,
        record: &DeploymentRecord,
        in_force: Option<&InForce>,
        known_good: Option<&[LastKnownGood]>,
        token: u64,
    ) -> Result<(), StateError> {
        let last_known_good = known_good.and_then(<[LastKnownGood]>::first);
        let environment = record.environment.clone();
        let corrupt = |reason: String| StateError::Corrupt {
            pk: env_pk(&environment),
            sk: record_sk(record),
            reason,
        };
        let mut item = to_item(record).map_err(corrupt)?;
        item.insert("pk".into(), AttributeValue::S(env_pk(&environment)));
        item.insert("sk".into(), AttributeValue::S(record_sk(record)));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()
            .expect("table and item are set");
        let mut fields = Vec::new();
        if let Some(f) = in_force {
            let v = serde_json::to_value(f).map_err(|e| corrupt(e.to_string()))?;
            fields.push(("spec_in_force", to_attr(&v)));
        }
        if let Some(l) = last_known_good {
            let v = serde_json::to_value(l).map_err(|e| corrupt(e.to_string()))?;
            fields.push(("last_known_good", to_attr(&v)));
        }
        if let Some(history) = known_good {
            let v = serde_json::to_value(history).map_err(|e| corrupt(e.to_string()))?;
            fields.push(("known_good", to_attr(&v)));
        }
        self.fenced_write(
            &environment,
            token,
            vec![TransactWriteItem::builder().put(put).build()],
            fields,
        )
        .await?;
        tracing::info!(
            environment,
            id = record.id,
            status = ?record.status,
            in_force = in_force.map(|f| f.spec_version.as_str()),
            last_known_good = last_known_good.map(|l| l.spec_version.as_str()),
            token,
            "deployment recorded"
        );
        Ok(())
    }

    /// Writes an observation (health, drift) without a fence: it records what was seen, changes nothing,
    /// and runs without the environment's lock.
    pub async fn put_observation<R: EnvRecord>(&self, record: &R) -> Result<(), StateError> {
        let environment = record.environment().to_owned();
        self.put_item(record_item(record)?).await?;
        tracing::info!(
            environment,
            kind = R::PREFIX,
            id = record.id(),
            "observation written"
        );
        Ok(())
    }

    /// Records of one kind for an environment within `range`, newest first, one page at a time.
    pub async fn list<R: EnvRecord>(
        &self,
        environment: &str,
        range: TimeRange,
        page: PageRequest,
    ) -> Result<Page<R>, StateError> {
        let pk = env_pk(environment);
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .scan_index_forward(false)
            .consistent_read(true)
            .expression_attribute_values(":pk", AttributeValue::S(pk));
        let prefix = format!("{}#", R::PREFIX);
        let query = match (range.from, range.to) {
            (None, None) => query
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":prefix", AttributeValue::S(prefix)),
            (from, to) => {
                let low = format!("{prefix}{}", from.map(rfc3339).unwrap_or_default());
                // U+10FFFF sorts after any id character, so `to` includes every record at that instant.
                let high = match to {
                    Some(t) => format!("{prefix}{}#{}", rfc3339(t), char::MAX),
                    None => format!("{prefix}{}", char::MAX),
                };
                query
                    .key_condition_expression("pk = :pk AND sk BETWEEN :low AND :high")
                    .expression_attribute_values(":low", AttributeValue::S(low))
                    .expression_attribute_values(":high", AttributeValue::S(high))
            }
        };
        self.page(query, page).await
    }

    /// The newest `n` records of one kind for an environment (follows cursors until it has `n` or none left).
    pub async fn latest<R: EnvRecord>(
        &self,
        environment: &str,
        n: u32,
    ) -> Result<Vec<R>, StateError> {
        let mut all = Vec::new();
        let mut page = PageRequest::first(n);
        loop {
            let got: Page<R> = self
                .list(environment, TimeRange::all(), page.clone())
                .await?;
            all.extend(got.items);
            match got.next {
                Some(next) if (all.len() as u32) < n => {
                    page = PageRequest {
                        limit: Some(n - all.len() as u32),
                        cursor: Some(next),
                    }
                }
                _ => break,
            }
        }
        all.truncate(n as usize);
        Ok(all)
    }
}
