//! End-to-end tests, one binary so that moto starts once for all of them.
//!
//! Every test takes a [`harness::World`]: a moto endpoint shared by the binary and resource names of its
//! own, so tests run in parallel without seeing each other.

// The shared moto server, unique names, clients.
mod harness;

// `opsplane bootstrap` against moto: creation, idempotence, convergence of a half-created state.
mod bootstrap;

// Environment locks on both backends: contention, leases, stale holders, fencing, the lock function.
mod locks;

// A real PostgreSQL (from the machine's packages) for the drill's SQL probe.
mod postgres;

// The backup workflow on the local engine: three instances, manifest hashes, catalog, lock, retention.
mod backup;

// The DR drill on the local engine: restore, verify (SQL probe), RTO/RPO, teardown on every path, reports.
mod drill;

// Drills restore where the source lives: its network, or the spec's `drill.placement` when it is gone.
mod placement;

// An instance's placement, storage, key and windows through provision: in place, approval, refusals, drift.
mod settings;

// Every instance and cluster setting, field by field: in place, waiting for approval, or blocked; drift.
mod field_plans;

// A real Redis server (from the machine's packages, with TLS and an AUTH token) for the Redis probe.
mod redis_server;

// The drill of an instance and a Redis group side by side: TLS probe, canary RPO, teardown on every path.
mod redis_drill;

// The fleet report: every environment's backup, drill and health in one heat map.
mod fleet;

// Fleet runs: 1,000 instances backed up within the RDS budget and quota; a month of the drill rotation.
mod fleet_runs;

// Redis replication groups through provision: made, changed in place, upgraded with approval, refused; drift.
mod redis;

// The cluster a backup exports (add-ons, access entries, pod identity) and the rebuild a drill plans from it.
mod eks_export;

// Copies of encrypted snapshots: a key of the copy region or a refusal before any snapshot; pruned there.
mod encrypted_copies;

// S3 lock faults moto cannot produce (lost PUT response, foreign 412, 409 conflict), via aws-smithy-mocks.
mod lock_faults;

// The DISTRIBUTED Map's S3 ItemReader against moto, through the SDK.
mod engine_s3;

// The state store: typed records, newest-first paged queries by environment and time, fencing, audit.
mod state_store;

// Idempotent handler actions: one side effect per task, duplicates and reused keys refused.
mod idempotency;

// The local plane's wiring: locks ask the local engine whether their holder still runs.
mod plane;

// The deploy template: a stack in moto's CloudFormation, the alarm rule against real events, GitHub trust.
mod template;

// Outcome events: the definitions publish to EventBridge on moto, delivered through a rule to SQS.
mod notify;

// The dispatch function: GitHub OIDC tokens against a JWKS served on loopback, the policy, idempotent starts.
mod dispatch;

// The operator CLI: run with progress, watch over the engine's history, history from the state table.
mod cli;

// The provision workflow: the dev example created, nothing planned twice, approval, policy, bad input, lint.
mod provision;

// Health: a change failing its health check reverted to the last known good; the sweep.
mod health;

// Alarm-driven rollback: the in-flight provision stopped, one rollback for five copies of the event.
mod rollback;

// A deployment's bake: alarms watched before it becomes the last known good; an alarm during it reverts.
mod bake;

// Drift: a change behind opsplane's back reported on demand and recorded by the workflow.
mod drift;

// Lost responses (a committed write the SDK sends again), via aws-smithy-mocks: claims, fenced writes.
mod lost_responses;

// Faults mid-workflow: a crashing or timed-out function, AWS throttling and 5xx, moto stopping mid-run.
mod faults;

// Malformed inputs, generated, against every workflow's input validation: refused, field named, nothing changed.
mod input_props;

// Probe credentials by reference (Secrets Manager, RDS IAM auth): the values are nowhere afterwards.
mod secrets;

// Customer-managed KMS keys: bootstrap encrypts the table and the bucket with the given key.
mod kms;

// The immutable audit trail: Object Lock copies in S3 and `opsplane audit` checking them against the table.
mod audit;

// What an operator reads: no Debug output; every --json output parses.
mod readable;

// The drill report in a real headless browser (Chromium): screenshots, the DOM it built, one drill and thirty.
mod browser;

// The local world's model of AWS met by the workflows: quotas, refusals in a status, throttling.
mod world;
