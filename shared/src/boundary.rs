//! The JSON boundary every function shares: its input is a serde enum tagged on `action` (declared with
//! [`actions!`](crate::actions)), parsed once by [`parse_action`], which names the wrong field; and a
//! function is one [`Function`] that Lambda's runtime loop ([`serve`]) and the local engine call alike.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::OpsError;
use crate::future::BoxFuture;

/// A function's input: the enum [`actions!`](crate::actions) declares.
pub trait Action: DeserializeOwned + Sized {
    /// Every action's name, as the definitions send it in `action`.
    const NAMES: &'static [&'static str];

    /// Why `input` (without its `action`) is not the input of `action`, naming the field by its path.
    /// `None` when it is (or when `action` is unknown).
    fn explain(action: &str, input: Value) -> Option<OpsError>;
}

/// Declares a function's input: a serde enum internally tagged on `action`, one variant per action, each
/// holding that action's typed input, and its [`Action`](crate::boundary::Action) impl.
///
/// ```ignore
/// opsplane_shared::actions! {
///     /// The lock function's input.
///     pub enum LockAction {
///         /// Take the lock.
///         "acquire" => Acquire(AcquireInput),
///     }
/// }
/// ```
#[macro_export]
macro_rules! actions {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $tag:literal => $variant:ident($ty:ty) ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, serde::Deserialize)]
        #[serde(tag = "action")]
        $vis enum $name {
            $( $(#[$vmeta])* #[serde(rename = $tag)] $variant($ty), )+
        }

        impl $name {
            /// This action's name, as the definitions send it.
            pub fn name(&self) -> &'static str {
                match self {
                    $( Self::$variant(_) => $tag, )+
                }
            }
        }

        impl $crate::boundary::Action for $name {
            const NAMES: &'static [&'static str] = &[$($tag),+];

            fn explain(action: &str, input: serde_json::Value) -> Option<$crate::OpsError> {
                match action {
                    $( $tag => $crate::error::parse_input::<$ty>(input, "").err(), )+
                    _ => None,
                }
            }
        }
    };
}

/// Implements [`Function`](crate::boundary::Function) for a function's deps: its name and its async
/// `handle(&deps, input)`.
#[macro_export]
macro_rules! function {
    ($deps:ty, $name:expr, $handle:path) => {
        impl $crate::boundary::Function for $deps {
            const NAME: &'static str = $name;

            fn handle(
                &self,
                input: serde_json::Value,
            ) -> $crate::future::BoxFuture<'_, Result<serde_json::Value, $crate::OpsError>> {
                Box::pin($handle(self, input))
            }
        }
    };
}

/// Parses a function's input into its action enum. Bad input is `InvalidInput` naming the field: the input
/// itself when it is not an object, `action` when it is missing or unknown (with every valid name), else the
/// action's field by its path (`rds[0].identifier`).
pub fn parse_action<A: Action>(input: Value) -> Result<A, OpsError> {
    let one_of = || A::NAMES.join(", ");
    let action = match &input {
        Value::Object(fields) => match fields.get("action") {
            Some(Value::String(a)) => a.clone(),
            _ => {
                return Err(OpsError::invalid(
                    "action",
                    format!("missing or not a string; one of {}", one_of()),
                ));
            }
        },
        _ => {
            return Err(OpsError::invalid(
                "input",
                "must be a JSON object with an `action`",
            ));
        }
    };
    if !A::NAMES.contains(&action.as_str()) {
        return Err(OpsError::invalid(
            "action",
            format!("unknown action {action}; one of {}", one_of()),
        ));
    }
    // Read in place: the input is copied only on the error path below.
    match A::deserialize(&input) {
        Ok(parsed) => Ok(parsed),
        Err(err) => {
            // serde reads an internally tagged enum through a buffer that forgets where it was: parsing the
            // action's own type again finds the path of the field at fault.
            let mut rest = input;
            if let Value::Object(fields) = &mut rest {
                fields.remove("action");
            }
            Err(A::explain(&action, rest)
                .unwrap_or_else(|| OpsError::invalid("input", err.to_string())))
        }
    }
}

/// A workflow's input as a caller gave it: an object of the `allowed` fields (plus `github`, the dispatch
/// function's GitHub context, an object kept in the execution's history only) with a string
/// `environment`. Anything else is `InvalidInput` naming the field; `unknown` says what the workflow takes.
/// Returns the fields and the environment.
pub fn workflow_input<'a>(
    input: &'a Value,
    allowed: &[&str],
    unknown: &str,
) -> Result<(&'a serde_json::Map<String, Value>, &'a str), OpsError> {
    let fields = input.as_object().ok_or_else(|| {
        OpsError::invalid(
            "input",
            "must be an object like {\"environment\": \"prod\"}",
        )
    })?;
    for (key, value) in fields {
        if key == "github" && value.is_object() {
            continue;
        }
        if key != "environment" && !allowed.contains(&key.as_str()) {
            return Err(OpsError::invalid(
                key.clone(),
                format!("unknown field; {unknown}"),
            ));
        }
    }
    let environment = fields
        .get("environment")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            OpsError::invalid(
                "environment",
                "required: the environment's name, e.g. \"prod\"",
            )
        })?;
    Ok((fields, environment))
}

/// A function: its name (as deployed and as registered on the local engine) and its JSON boundary.
pub trait Function: Send + Sync + 'static {
    /// The function's name.
    const NAME: &'static str;

    /// Parses `input`, runs the action, and answers its output as JSON.
    fn handle(&self, input: Value) -> BoxFuture<'_, Result<Value, OpsError>>;
}

/// The answer of an action, as JSON.
pub fn to_value<T: serde::Serialize>(out: T) -> Result<Value, OpsError> {
    serde_json::to_value(out)
        .map_err(|e| OpsError::Internal(format!("serialising the output: {e}")))
}

/// A function's whole `main`: tracing, the configuration and the clients once, the function built from them
/// by `build`, then Lambda's runtime loop.
pub async fn run<F, B>(build: B) -> Result<(), lambda_runtime::Error>
where
    F: Function,
    B: FnOnce(crate::Config, &crate::aws::Clients) -> Result<F, lambda_runtime::Error>,
{
    crate::telemetry::init();
    let config = crate::Config::from_env()?;
    let clients = crate::aws::Clients::load(&config).await;
    serve(build(config, &clients)?).await
}

/// Lambda's runtime loop over `function`: what every function's `main` ends with.
pub async fn serve<F: Function>(function: F) -> Result<(), lambda_runtime::Error> {
    let function = &function;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<Value>| async move {
            handle_caught(function, event.payload).await
        },
    ))
    .await
}

/// Runs `function` on `input`; a handler that panics answers `Internal` (with the panic's message) like any
/// other internal error, so Step Functions sees a stable error name its `Retry` and `Catch` can name, not
/// whatever the runtime makes of the panic's payload type.
pub async fn handle_caught<F: Function>(function: &F, input: Value) -> Result<Value, OpsError> {
    let mut running = function.handle(input);
    std::future::poll_fn(move |cx| {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| running.as_mut().poll(cx))) {
            Ok(poll) => poll,
            // The future is not polled again after this.
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "no message".to_owned());
                tracing::error!(function = F::NAME, message, "handler panicked");
                std::task::Poll::Ready(Err(OpsError::Internal(format!(
                    "the {} handler panicked: {message}",
                    F::NAME
                ))))
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Take {
        environment: String,
        #[serde(default)]
        lease_seconds: Option<u64>,
        #[serde(default)]
        tags: Vec<Tag>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Tag {
        key: String,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Nothing {}

    crate::actions! {
        /// A test function's input.
        enum TestAction {
            /// Takes something.
            "take" => Take(Take),
            /// Does nothing.
            "noop" => Noop(Nothing),
        }
    }

    fn field(input: Value) -> String {
        match parse_action::<TestAction>(input).unwrap_err() {
            OpsError::InvalidInput { field, .. } => field,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn a_good_input_is_its_variant() {
        let a: TestAction =
            parse_action(json!({"action": "take", "environment": "dev", "lease_seconds": 5}))
                .unwrap();
        assert_eq!(a.name(), "take");
        assert!(matches!(
            a,
            TestAction::Take(Take {
                lease_seconds: Some(5),
                ..
            })
        ));
        let n: TestAction = parse_action(json!({"action": "noop"})).unwrap();
        assert_eq!(n.name(), "noop");
    }

    #[test]
    fn the_wrong_field_is_named_by_its_path() {
        assert_eq!(
            field(json!({"action": "take", "environment": 5})),
            "environment"
        );
        assert_eq!(field(json!({"action": "take"})), "environment");
        assert_eq!(
            field(json!({"action": "take", "environment": "d", "x": 1})),
            "x"
        );
        assert_eq!(
            field(json!({"action": "take", "environment": "d", "tags": [{"key": 1}]})),
            "tags[0].key"
        );
    }

    #[test]
    fn a_missing_or_unknown_action_names_action_and_lists_them() {
        for input in [json!({}), json!({"action": 3}), json!({"action": "nope"})] {
            match parse_action::<TestAction>(input).unwrap_err() {
                OpsError::InvalidInput { field, reason } => {
                    assert_eq!(field, "action");
                    assert!(reason.contains("take, noop"), "{reason}");
                }
                other => panic!("{other}"),
            }
        }
        assert_eq!(field(json!([1])), "input");
    }

    struct Panics;

    impl Function for Panics {
        const NAME: &'static str = "panics";

        fn handle(&self, input: Value) -> BoxFuture<'_, Result<Value, OpsError>> {
            Box::pin(async move {
                tokio::task::yield_now().await;
                if input["action"] == "boom" {
                    panic!("index out of bounds");
                }
                Ok(input)
            })
        }
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_internal_with_its_message() {
        let err = handle_caught(&Panics, json!({"action": "boom"}))
            .await
            .unwrap_err();
        assert_eq!(err.name(), crate::ErrorName::Internal);
        assert!(err.to_string().contains("index out of bounds"), "{err}");
        let ok = handle_caught(&Panics, json!({"action": "fine"})).await;
        assert_eq!(ok.unwrap(), json!({"action": "fine"}));
    }
}
