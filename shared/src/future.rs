//! The boxed future every port's methods return, so the ports can be used as trait objects
//! (`Arc<dyn Executions>`): async functions in traits are not dyn-compatible.

use std::future::Future;
use std::pin::Pin;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
