//! The DR drill's actions: validate, sweep orphans, pick, restore, check, verify (with the EKS rebuild
//! plan), measure, teardown, report, record; and the same steps for the environment's Redis replication
//! group (`cache`), which the workflow runs beside the RDS ones.
//!
//! One file per step; every step's input, output and action is re-exported here, as the handler's
//! dispatch and the workflow name them.

mod cache;
mod measure;
mod pick;
mod rebuild;
mod record;
mod report;
mod restore;
mod sweep;
mod teardown;
mod validate;
mod verify;

pub use cache::{
    CacheDrill, CacheInput, CachePick, CacheRestored, CacheScratch, MeasureCacheInput,
    RESTORE_CACHE_STATE, RestoreCacheInput, VerifyCacheInput, WAIT_CACHE_RESTORE_STATE,
    check_cache_restore, check_cache_teardown, measure_cache, pick_cache_snapshot, restore_cache,
    teardown_cache, verify_cache,
};
pub use measure::{MeasureInput, RESTORE_STATE, WAIT_RESTORE_STATE, measure};
pub use pick::{Pick, PickInput, pick_snapshot};
pub use rebuild::CHECK as REBUILD_CHECK;
pub use record::{RecordInput, RecordOutput, record};
pub use report::{
    CHART_DRILLS, DrillState, ReportInput, ReportOutput, emf_line, read_report, report,
    report_keys_of, summary_line,
};
pub use restore::{
    CheckRestoreInput, RestoreInput, Restored, Scratch, check_restore, drill_tags, restore,
};
pub use sweep::{DEFAULT_ORPHAN_MINUTES, SweepInput, SweepOutput, sweep_orphans};
pub use teardown::{TeardownInput, TeardownOutput, check_teardown, teardown};
pub use validate::{DrillPlan, ValidateInput, validate};
pub use verify::{Verification, VerifyInput, verify};
