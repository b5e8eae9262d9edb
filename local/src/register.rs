//! Registering a function on the local engine: the same JSON boundary Lambda calls, in-process.

use std::sync::Arc;

use opsplane_shared::OpsError;
use opsplane_shared::boundary::Function;
use opsplane_statemachines::{Engine, FunctionError};

/// The error a handler returns, as the engine hands it to `Retry`/`Catch`: the stable error name and the
/// full (redacted) message, as a Rust Lambda reports `{"errorType", "errorMessage"}`.
pub fn function_error(err: OpsError) -> FunctionError {
    FunctionError::new(err.name().as_str(), err.full_message())
}

/// Registers `function` on `engine` under its name (re-registering replaces it).
pub fn register<F: Function>(engine: &Engine, function: F) {
    let function = Arc::new(function);
    engine.register_handler(F::NAME, move |input, ctx| {
        let function = function.clone();
        // Every AWS call the handler makes is timed at the execution's virtual time and acts with the
        // function's template role (the world's model of AWS).
        crate::world::acting(
            ctx.virtual_now(),
            format!("function:{}", F::NAME),
            async move { function.handle(input).await.map_err(function_error) },
        )
    });
}
