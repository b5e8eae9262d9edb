//! The local Amazon States Language engine and opsplane's workflow definitions.
