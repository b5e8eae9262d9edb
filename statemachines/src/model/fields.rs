//! Which fields each state type accepts, and which belong to one query language only.

pub(super) const COMMON: &[&str] = &["Type", "Comment", "QueryLanguage"];
pub(super) const JSONPATH_IO: &[&str] = &["InputPath", "OutputPath"];

/// Fields every state that moves on to another one takes.
const TRANSITION: &[&str] = &["Next", "End"];
/// Fields that shape what a state hands on, in either query language.
const OUTCOME: &[&str] = &["Output", "Assign"];
/// Fields of the states that call something and handle its result.
const CALL: &[&str] = &[
    "ResultPath",
    "Parameters",
    "ResultSelector",
    "Retry",
    "Catch",
];

/// The field groups a state type takes beyond [`COMMON`] and [`JSONPATH_IO`]; a type
/// the States Language does not define takes none.
fn allowed_groups(t: &str) -> &'static [&'static [&'static str]] {
    match t {
        "Pass" => &[TRANSITION, OUTCOME, &["ResultPath", "Parameters", "Result"]],
        "Task" => &[
            TRANSITION,
            OUTCOME,
            CALL,
            &[
                "Arguments",
                "Resource",
                "TimeoutSeconds",
                "TimeoutSecondsPath",
                "HeartbeatSeconds",
                "HeartbeatSecondsPath",
                "Credentials",
            ],
        ],
        "Choice" => &[OUTCOME, &["Choices", "Default"]],
        "Wait" => &[
            TRANSITION,
            OUTCOME,
            &["Seconds", "Timestamp", "SecondsPath", "TimestampPath"],
        ],
        "Succeed" => &[&["Output"]],
        "Fail" => &[&["Error", "Cause", "ErrorPath", "CausePath"]],
        "Parallel" => &[TRANSITION, OUTCOME, CALL, &["Arguments", "Branches"]],
        "Map" => &[
            TRANSITION,
            OUTCOME,
            CALL,
            &[
                "Iterator",
                "ItemProcessor",
                "ItemsPath",
                "Items",
                "ItemSelector",
                "ItemReader",
                "ItemBatcher",
                "ResultWriter",
                "MaxConcurrency",
                "MaxConcurrencyPath",
                "ToleratedFailureCount",
                "ToleratedFailureCountPath",
                "ToleratedFailurePercentage",
                "ToleratedFailurePercentagePath",
                "Label",
            ],
        ],
        _ => &[],
    }
}

/// Whether a state of type `t` takes the field `key` (beyond [`COMMON`] and [`JSONPATH_IO`]).
pub(super) fn allows(t: &str, key: &str) -> bool {
    allowed_groups(t).iter().any(|group| group.contains(&key))
}

pub(super) const JSONPATH_ONLY: &[&str] = &[
    "InputPath",
    "OutputPath",
    "ResultPath",
    "Parameters",
    "ResultSelector",
    "ItemsPath",
    "SecondsPath",
    "TimestampPath",
    "TimeoutSecondsPath",
    "HeartbeatSecondsPath",
    "ErrorPath",
    "CausePath",
    "MaxConcurrencyPath",
    "ToleratedFailureCountPath",
    "ToleratedFailurePercentagePath",
];
pub(super) const JSONATA_ONLY: &[&str] = &["Arguments", "Output", "Items"];
