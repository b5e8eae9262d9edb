//! End-to-end tests, one binary so that moto starts once for all of them.
//!
//! Every test takes a [`harness::World`]: a moto endpoint shared by the binary and resource names of its
//! own, so tests run in parallel without seeing each other.

// The shared moto server, unique names, clients.
mod harness;

// `opsplane bootstrap` against moto: creation, idempotence, convergence of a half-created state.
mod bootstrap;

// The DISTRIBUTED Map's S3 ItemReader against moto, through the SDK.
mod engine_s3;
