//! The state store: one DynamoDB table holding every environment's records, the fence, and the audit log.
//!
//! Keys (the README's "The control plane's own state"): `pk=ENV#<env>` with `sk=META` (fence, last known good), `DEPLOY#<ts>#<id>`,
//! `BACKUP#<ts>#<id>`, `DRILL#<ts>#<id>`; `pk=AUDIT#<yyyy-mm-dd>`, `sk=<ts>#<id>` for audit events. `<ts>` is
//! fixed-width RFC 3339 in UTC with milliseconds, so sort keys sort by time and a time range is one `BETWEEN`.
//!
//! Every write that changes an environment's records is fenced: one `TransactWriteItems` raises `META.fence`
//! to the caller's lock token on condition that the fence is not newer, checks that the lock item has issued
//! no newer token, and writes the record. A stale holder's write fails with [`StateError::Fenced`] and
//! changes nothing. Records are stored as plain attributes (readable in the console), not as JSON blobs.
//!
//! Audit events are also copied to S3 under Object Lock ([`AuditArchive`]); [`crate::audit`] checks that the
//! two agree. The dependency runs one way: the audit check reads this store, the store knows nothing of it.

mod approval;
mod archive;
mod attr;
mod audit;
mod error;
mod fence;
mod keys;
mod meta;
mod paging;
mod records;
mod store;

pub use archive::{AUDIT_PREFIX, AuditArchive, AuditError, audit_key, day_prefix};
pub use error::StateError;
pub use keys::{LOCK_SK, META_SK, approval_pk, env_pk};
pub use meta::EnvMeta;
pub use paging::{Cursor, Page, PageRequest, TimeRange};
pub use records::{
    ApprovalRecord, ApprovalStatus, AuditEvent, BackupRecord, BackupStatus, DeploymentRecord,
    DeploymentStatus, DriftRecord, DrillRecord, DrillVerdict, EnvRecord, HealthRecord, InForce,
    LastKnownGood, record_sk,
};
pub use store::StateStore;
