//! The environments a fleet run (health sweep, drift) covers, from its input: `{}` (every environment with
//! a spec) or `{"environments": [...]}` (those named, each of which must have one).

use serde::Deserialize;
use serde_json::Value;

use crate::OpsError;
use crate::aws::specs::SpecStore;
use crate::domain::spec::validate_environment_name;

/// The input of a `list-environments` action: the workflow's input as given.
#[derive(Debug, Default, Deserialize)]
pub struct SweepInput {
    /// The workflow's input.
    #[serde(default)]
    pub input: Value,
}

/// The sweep's environments from its input (`{}` or `{"environments": [...]}`): every one with a spec, or
/// those named, each of which must have one.
pub async fn sweep_environments(specs: &SpecStore, input: &Value) -> Result<Vec<String>, OpsError> {
    let known = specs.environments().await?;
    let Some(named) = sweep_request(input)? else {
        return Ok(known);
    };
    for (i, env) in named.iter().enumerate() {
        if !known.iter().any(|k| k == env) {
            return Err(OpsError::invalid(
                format!("environments[{i}]"),
                format!(
                    "no spec for environment `{env}`; known: {}",
                    known.join(", ")
                ),
            ));
        }
    }
    Ok(named)
}

/// The sweep's input checked for shape: the environments it names, `None` for every one. Touches nothing.
pub fn sweep_request(input: &Value) -> Result<Option<Vec<String>>, OpsError> {
    let obj = match input {
        Value::Null => return Ok(None),
        Value::Object(obj) => obj,
        _ => {
            return Err(OpsError::invalid(
                "input",
                "must be {} or {\"environments\": [\"prod\", ...]}",
            ));
        }
    };
    // `github`: the caller's GitHub context, added by the dispatch function; kept in the execution's input only.
    if obj.get("github").is_some_and(|g| !g.is_object()) {
        return Err(OpsError::invalid(
            "github",
            "must be an object: the GitHub context the dispatch function adds",
        ));
    }
    if let Some(key) = obj.keys().find(|k| *k != "environments" && *k != "github") {
        return Err(OpsError::invalid(
            key.clone(),
            "unknown field; the sweep takes only `environments` (and the object `github`)",
        ));
    }
    let Some(named) = obj.get("environments") else {
        return Ok(None);
    };
    let named = named
        .as_array()
        .ok_or_else(|| OpsError::invalid("environments", "must be a list of environment names"))?;
    let mut out = Vec::with_capacity(named.len());
    for (i, env) in named.iter().enumerate() {
        let field = format!("environments[{i}]");
        let env = env
            .as_str()
            .ok_or_else(|| OpsError::invalid(field.clone(), "must be a string"))?;
        validate_environment_name(env).map_err(|r| OpsError::invalid(field.clone(), r))?;
        out.push(env.to_owned());
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_sweep_accepts_the_dispatch_functions_github_object_and_nothing_else_new() {
        let github = json!({"repository": "acme/infra", "run_id": 42});
        assert_eq!(
            sweep_request(&json!({"environments": ["prod"], "github": github})).unwrap(),
            Some(vec!["prod".to_owned()])
        );
        assert_eq!(sweep_request(&json!({"github": github})).unwrap(), None);
        let err = sweep_request(&json!({"github": "acme/infra"})).unwrap_err();
        assert!(
            matches!(err, OpsError::InvalidInput { ref field, .. } if field == "github"),
            "{err}"
        );
        let err = sweep_request(&json!({"gitlab": {}})).unwrap_err();
        assert!(
            matches!(err, OpsError::InvalidInput { ref field, .. } if field == "gitlab"),
            "{err}"
        );
    }
}
