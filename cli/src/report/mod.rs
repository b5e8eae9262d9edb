//! `opsplane report`: the drill reports of one environment (`drills`) and the fleet's heat map (`fleet`).

mod drills;
mod fleet;

pub use drills::{DrillReportOutput, drill};
pub use fleet::{FleetOutput, fleet};
