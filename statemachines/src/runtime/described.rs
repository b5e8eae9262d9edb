//! An execution as Step Functions' own integrations show it: the `DescribeExecution` answer with
//! PascalCase fields, as a `states:startExecution.sync` Task returns it (and as its failure's cause) and
//! as a DISTRIBUTED Map's `ResultWriter` writes it
//! (https://docs.aws.amazon.com/step-functions/latest/dg/connect-stepfunctions.html,
//! https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html).

use serde_json::{Map, Value, json};

use crate::execution::{Description, Status};
use crate::runtime::history::ts;

/// How the description is written.
#[derive(Clone, Copy)]
pub(crate) struct Shape {
    /// `Input` and `Output` as JSON values (`.sync:2`) rather than JSON text (`.sync`, ResultWriter).
    pub(crate) parsed: bool,
    /// Dates as ISO-8601 text (ResultWriter files) rather than epoch milliseconds (a Task's result, as
    /// the service integrations serialise dates).
    pub(crate) iso_dates: bool,
    /// A DISTRIBUTED Map's child: a failed one is redriven by redriving its Map Run.
    pub(crate) map_child: bool,
}

/// The execution in `shape`, fields in AWS's (alphabetical) order.
pub(crate) fn described(d: &Description, shape: Shape) -> Value {
    let date = |t: chrono::DateTime<chrono::Utc>| {
        if shape.iso_dates {
            Value::String(ts(t))
        } else {
            json!(t.timestamp_millis())
        }
    };
    let data = |v: &Value| {
        if shape.parsed {
            v.clone()
        } else {
            Value::String(v.to_string())
        }
    };
    let mut m = Map::new();
    if let Some(c) = &d.cause {
        m.insert("Cause".into(), Value::String(c.clone()));
    }
    if let Some(e) = &d.error {
        m.insert("Error".into(), Value::String(e.clone()));
    }
    m.insert("ExecutionArn".into(), json!(d.execution_arn));
    m.insert("Input".into(), data(&d.input));
    m.insert("InputDetails".into(), json!({"Included": true}));
    m.insert("Name".into(), json!(d.name));
    if let Some(o) = &d.output {
        m.insert("Output".into(), data(o));
        m.insert("OutputDetails".into(), json!({"Included": true}));
    }
    m.insert("RedriveCount".into(), json!(0));
    // "Redriving executions" (https://docs.aws.amazon.com/step-functions/latest/dg/redrive-executions.html):
    // a failed execution is redrivable, a Map Run's child through its Map Run; an open or successful
    // one is not, and says why.
    let (redrive, reason) = match d.status {
        Status::Failed | Status::TimedOut | Status::Aborted if shape.map_child => {
            ("REDRIVABLE_BY_MAP_RUN", None)
        }
        Status::Failed | Status::TimedOut | Status::Aborted => ("REDRIVABLE", None),
        s => (
            "NOT_REDRIVABLE",
            Some(format!(
                "Execution is {} and cannot be redriven",
                s.as_str()
            )),
        ),
    };
    m.insert("RedriveStatus".into(), json!(redrive));
    if let Some(r) = reason {
        m.insert("RedriveStatusReason".into(), Value::String(r));
    }
    m.insert("StartDate".into(), date(d.start_date));
    m.insert("StateMachineArn".into(), json!(d.state_machine_arn));
    m.insert("Status".into(), json!(d.status.as_str()));
    if let Some(stop) = d.stop_date {
        m.insert("StopDate".into(), date(stop));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn desc(status: Status) -> Description {
        let t = Utc.with_ymd_and_hms(2025, 2, 4, 1, 49, 50).unwrap();
        Description {
            execution_arn: "arn:x".into(),
            state_machine_arn: "arn:m".into(),
            name: "n".into(),
            status,
            input: json!({"a": 1}),
            output: (status == Status::Succeeded).then(|| json!([1])),
            error: (status == Status::Failed).then(|| "E".to_string()),
            cause: (status == Status::Failed).then(|| "C".to_string()),
            start_date: t,
            stop_date: Some(t + chrono::Duration::milliseconds(64)),
        }
    }

    #[test]
    fn text_or_parsed_data_and_dates() {
        let sync = Shape {
            parsed: false,
            iso_dates: false,
            map_child: false,
        };
        let v = described(&desc(Status::Succeeded), sync);
        assert_eq!(v["Input"], json!("{\"a\":1}"));
        assert_eq!(v["Output"], json!("[1]"));
        assert_eq!(v["StopDate"], json!(1_738_633_790_064_i64));
        assert_eq!(v["RedriveStatus"], json!("NOT_REDRIVABLE"));
        let v2 = described(
            &desc(Status::Succeeded),
            Shape {
                parsed: true,
                ..sync
            },
        );
        assert_eq!(v2["Output"], json!([1]));
        let written = described(
            &desc(Status::Failed),
            Shape {
                iso_dates: true,
                map_child: true,
                ..sync
            },
        );
        assert_eq!(written["StartDate"], json!("2025-02-04T01:49:50.000Z"));
        assert_eq!(written["Error"], json!("E"));
        assert!(written.get("Output").is_none());
        assert_eq!(written["RedriveStatus"], json!("REDRIVABLE_BY_MAP_RUN"));
    }
}
