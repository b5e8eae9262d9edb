//! The validation context: the problems found so far, and the recursive builders of states and
//! scopes as methods, so that the files holding them need not import each other.

use serde_json::Value;

use super::types::QueryLanguage;
use crate::error::ValidationError;

pub(crate) struct Ctx {
    pub(super) errors: Vec<ValidationError>,
}

impl Ctx {
    pub(super) fn push(&mut self, e: ValidationError) {
        self.errors.push(e);
    }
}

pub(super) fn ql(v: &Value) -> Option<QueryLanguage> {
    match v.as_str()? {
        "JSONPath" => Some(QueryLanguage::JsonPath),
        "JSONata" => Some(QueryLanguage::Jsonata),
        _ => None,
    }
}
