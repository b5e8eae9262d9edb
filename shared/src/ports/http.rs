//! The HTTP health check as a port: the health-check function probes through it, tests serve the endpoint
//! on loopback.

use crate::domain::health::HttpObservation;
use crate::domain::spec::HttpCheck;
use crate::future::BoxFuture;

/// Runs one HTTP check.
pub trait HttpProber: Send + Sync {
    /// GETs the check's URL within its latency budget and says what came back. Never fails: a refused
    /// connection or a timeout is an observation.
    fn probe<'a>(&'a self, check: &'a HttpCheck) -> BoxFuture<'a, HttpObservation>;
}
