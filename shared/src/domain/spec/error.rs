//! Why a spec could not be used: its YAML, its shape, or a value the checks refuse, each naming the field.

use thiserror::Error;

/// A spec could not be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SpecError {
    /// The document is not YAML of the spec's shape (unknown field, wrong type, missing field).
    #[error("spec is not valid YAML of the expected shape: {0}")]
    Syntax(String),
    /// A field does not have the spec's shape (unknown field, wrong type, missing field).
    #[error("spec field `{field}`: {reason}")]
    Shape {
        /// The field's path, e.g. `rds[0].instance_class`.
        field: String,
        /// What serde found wrong, with what is allowed.
        reason: String,
    },
    /// A spec file could not be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// A spec file is invalid; names the file.
    #[error("{path}: {source}")]
    InFile {
        /// The file.
        path: String,
        /// What is wrong.
        #[source]
        source: Box<SpecError>,
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

impl SpecError {
    /// The path of the offending field (`spec` when the whole document is malformed).
    pub fn field(&self) -> &str {
        match self {
            SpecError::Syntax(_) | SpecError::Read { .. } => "spec",
            SpecError::Invalid { field, .. } | SpecError::Shape { field, .. } => field,
            SpecError::InFile { source, .. } => source.field(),
        }
    }

    pub(super) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        SpecError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
