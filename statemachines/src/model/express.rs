//! State machine types, and what an EXPRESS machine may not contain: AWS refuses `.waitForTaskToken`
//! and `.sync` integrations in Express workflows at creation ("Standard vs. Express Workflows",
//! https://docs.aws.amazon.com/step-functions/latest/dg/choosing-workflow-type.html: Express workflows
//! do not support the Job-run (`.sync`) or Callback (`.waitForTaskToken`) patterns).

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::error::ValidationError;

/// A state machine's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MachineType {
    /// Durable, exactly-once, with execution history.
    #[default]
    Standard,
    /// Short-lived, at-least-once, history in CloudWatch Logs only.
    Express,
}

/// A type name that is neither STANDARD nor EXPRESS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown state machine type \"{0}\": expected STANDARD or EXPRESS")]
pub struct UnknownMachineType(pub String);

impl FromStr for MachineType {
    type Err = UnknownMachineType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "STANDARD" => Ok(MachineType::Standard),
            "EXPRESS" => Ok(MachineType::Express),
            other => Err(UnknownMachineType(other.to_string())),
        }
    }
}

impl fmt::Display for MachineType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MachineType::Standard => "STANDARD",
            MachineType::Express => "EXPRESS",
        })
    }
}

/// The problems an EXPRESS machine has that a STANDARD one would not, in every nested scope.
pub(super) fn express_errors(scope: &Value, out: &mut Vec<ValidationError>) {
    let Some(states) = scope.get("States").and_then(Value::as_object) else {
        return;
    };
    for (name, s) in states {
        if let Some(r) = s.get("Resource").and_then(Value::as_str) {
            let pattern = if r.ends_with(".waitForTaskToken") {
                Some(".waitForTaskToken")
            } else if r.ends_with(".sync") || r.contains(".sync:") {
                Some(".sync")
            } else {
                None
            };
            if let Some(p) = pattern {
                out.push(ValidationError::field(
                    name,
                    "Resource",
                    format!("Express state machine does not support '{p}' service integration"),
                ));
            }
        }
        for b in s
            .get("Branches")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            express_errors(b, out);
        }
        for field in ["ItemProcessor", "Iterator"] {
            if let Some(sub) = s.get(field) {
                express_errors(sub, out);
            }
        }
    }
}
