//! Fleet runs (`fleet.asl.json`): every environment's backup, or a night of the drill rotation, as child
//! executions of one Distributed Map, paced within the RDS request budget.
//!
//! `plan-fleet` decides what runs and when (each item's `not_before`), checks the manual snapshot quota
//! first, and writes the items where the Map's `ItemReader` reads them; `record-fleet-run` reads what the
//! Map's `ResultWriter` wrote and summarises the run (and, for the rotation, the fleet's drill compliance).

mod capacity;
mod plan;
mod record;
mod rotation;

pub use plan::{FleetPlan, Item, Operation, PlanInput, plan};
pub use record::{Failure, RecordInput, RunSummary, record};

/// Where a run's objects live: `runs/fleet/<ts>-<operation>/` (items, then the Map Run's results).
fn run_prefix(ts: &str, operation: Operation) -> String {
    format!("runs/fleet/{ts}-{}", operation.as_str())
}
