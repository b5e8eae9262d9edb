//! Variables (`Assign`): each branch sees its own, then its parents'.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

/// Variables visible to a branch: its own, then its parents'.
pub(crate) struct Scope {
    parent: Option<Arc<Scope>>,
    vars: Mutex<HashMap<String, Value>>,
}

impl Scope {
    pub(super) fn new(parent: Option<Arc<Scope>>) -> Arc<Scope> {
        Arc::new(Scope {
            parent,
            vars: Mutex::new(HashMap::new()),
        })
    }

    pub(super) fn get(&self, name: &str) -> Option<Value> {
        if let Some(v) = self.vars.lock().expect("vars lock").get(name) {
            return Some(v.clone());
        }
        self.parent.as_ref().and_then(|p| p.get(name))
    }

    pub(super) fn all(&self, out: &mut Vec<(String, Value)>) {
        if let Some(p) = &self.parent {
            p.all(out);
        }
        for (k, v) in self.vars.lock().expect("vars lock").iter() {
            out.retain(|(n, _)| n != k);
            out.push((k.clone(), v.clone()));
        }
    }

    pub(super) fn set_all(&self, vals: Vec<(String, Value)>) {
        let mut vars = self.vars.lock().expect("vars lock");
        for (k, v) in vals {
            vars.insert(k, v);
        }
    }
}
