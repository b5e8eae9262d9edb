//! An environment's `META` item: the fence, the last known good deployment and the spec version in force,
//! read together and written fenced.

use aws_sdk_dynamodb::types::AttributeValue;

use super::attr::{from_attr, to_attr};
use super::error::StateError;
use super::keys::{META_SK, env_pk};
use super::records::{InForce, LastKnownGood};
use super::store::StateStore;

/// An environment's `META` item.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EnvMeta {
    /// The highest fencing token that mutated the environment (0 when none has).
    pub fence: u64,
    /// The last known good deployment.
    pub last_known_good: Option<LastKnownGood>,
    /// The spec version in force.
    pub in_force: Option<InForce>,
    /// The known-good deployments a rollback may go back to, newest first (the last known good first).
    pub known_good: Vec<LastKnownGood>,
}

impl StateStore {
    /// The environment's `META` item (fence 0 and no last known good when it has none).
    pub async fn meta(&self, environment: &str) -> Result<EnvMeta, StateError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(env_pk(environment)))
            .key("sk", AttributeValue::S(META_SK.into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StateError::aws("GetItem", e))?;
        let Some(item) = out.item else {
            return Ok(EnvMeta::default());
        };
        let corrupt = |reason: String| StateError::Corrupt {
            pk: env_pk(environment),
            sk: META_SK.into(),
            reason,
        };
        let fence = match item.get("fence") {
            None => 0,
            Some(v) => v
                .as_n()
                .ok()
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| corrupt("fence is not a number".into()))?,
        };
        let last_known_good = match item.get("last_known_good") {
            None => None,
            Some(v) => {
                Some(serde_json::from_value(from_attr(v)).map_err(|e| corrupt(e.to_string()))?)
            }
        };
        let in_force = match item.get("spec_in_force") {
            None => None,
            Some(v) => {
                Some(serde_json::from_value(from_attr(v)).map_err(|e| corrupt(e.to_string()))?)
            }
        };
        let known_good = match item.get("known_good") {
            Some(v) => serde_json::from_value(from_attr(v)).map_err(|e| corrupt(e.to_string()))?,
            // Written before the history was kept: the last known good is all there is.
            None => last_known_good.iter().cloned().collect(),
        };
        Ok(EnvMeta {
            fence,
            last_known_good,
            in_force,
            known_good,
        })
    }

    /// The last known good deployment of the environment.
    pub async fn last_known_good(
        &self,
        environment: &str,
    ) -> Result<Option<LastKnownGood>, StateError> {
        Ok(self.meta(environment).await?.last_known_good)
    }

    /// Records the last known good deployment in the environment's `META` item, fenced by `token`.
    pub async fn set_last_known_good(
        &self,
        environment: &str,
        lkg: &LastKnownGood,
        token: u64,
    ) -> Result<(), StateError> {
        let value = serde_json::to_value(lkg).map_err(|e| StateError::Corrupt {
            pk: env_pk(environment),
            sk: META_SK.into(),
            reason: e.to_string(),
        })?;
        self.fenced_write(
            environment,
            token,
            Vec::new(),
            vec![("last_known_good", to_attr(&value))],
        )
        .await
    }
}
