//! Why a spec could not be used: its YAML, its shape, or a value the checks refuse, each naming the field.

use thiserror::Error;

/// A spec could not be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SpecError {
    /// The document is not YAML (or not a mapping of fields).
    #[error("spec is not valid YAML of the expected shape: {0}")]
    Syntax(String),
    /// A spec file could not be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// Every problem with the spec's shape (unknown fields, wrong values, missing fields), each with its
    /// line, found at once.
    #[error("{}", show_problems(.0))]
    Problems(Vec<Problem>),
    /// A spec file is invalid; names the file. The problem is part of this error's message (not its
    /// source), so a chain of errors shows it once.
    #[error("{path}: {problem}")]
    InFile {
        /// The file.
        path: String,
        /// What is wrong.
        problem: Box<SpecError>,
    },
    /// A field has a value that is not allowed.
    #[error("spec field `{field}`: {reason}")]
    Invalid {
        /// The field's path, e.g. `rds[1].identifier`.
        field: String,
        /// What is wrong and what is allowed.
        reason: String,
    },
}

/// One problem with a spec's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The field's path, e.g. `rds[0].allocated_storage_gb`.
    pub field: String,
    /// Its line in the document (1-based), when the text has it.
    pub line: Option<usize>,
    /// What is wrong, and what is allowed.
    pub reason: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}, `{}`: {}", self.field, self.reason),
            None => write!(f, "`{}`: {}", self.field, self.reason),
        }
    }
}

fn show_problems(problems: &[Problem]) -> String {
    match problems {
        [one] => format!("spec {one}"),
        many => {
            let lines: Vec<String> = many.iter().map(|p| format!("  {p}")).collect();
            format!("{} problems in the spec:\n{}", many.len(), lines.join("\n"))
        }
    }
}

impl SpecError {
    /// The path of the offending field (`spec` when the whole document is malformed).
    pub fn field(&self) -> &str {
        match self {
            SpecError::Syntax(_) | SpecError::Read { .. } => "spec",
            SpecError::Invalid { field, .. } => field,
            SpecError::Problems(problems) => problems.first().map_or("spec", |p| p.field.as_str()),
            SpecError::InFile { problem, .. } => problem.field(),
        }
    }

    pub(super) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        SpecError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
