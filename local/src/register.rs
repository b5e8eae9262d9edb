//! Registering a function on the local engine: the same JSON boundary Lambda calls, in-process.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use opsplane_shared::OpsError;
use opsplane_shared::boundary::Function;
use opsplane_statemachines::{Engine, FunctionError};

/// Whether a handler error that shows Rust rather than words ends the process (`strict_readable`).
static STRICT_READABLE: AtomicBool = AtomicBool::new(false);

/// From now on, a handler error on any local engine that shows Rust `Debug` output or a Rust type's name
/// (`domain::readable::rust_text`) is printed and ends the process: the end-to-end suite turns it on, so
/// that every error its tests produce, whichever test produced it, is read as a person would read it.
pub fn strict_readable() {
    STRICT_READABLE.store(true, Ordering::Relaxed);
}

/// The error a handler returns, as the engine hands it to `Retry`/`Catch`: the stable error name and the
/// full (redacted) message, as a Rust Lambda reports `{"errorType", "errorMessage"}`.
pub fn function_error(err: OpsError) -> FunctionError {
    let message = err.full_message();
    if STRICT_READABLE.load(Ordering::Relaxed)
        && let Some(found) = opsplane_shared::domain::readable::rust_text(&message)
    {
        // Straight to the process's stderr: a test's captured output is lost when the process aborts.
        let _ = writeln!(
            std::io::stderr(),
            "a function's error shows {found}, not words: {message}"
        );
        std::process::abort();
    }
    FunctionError::new(err.name().as_str(), message)
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
