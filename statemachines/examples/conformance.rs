//! Runs conformance corpus files and prints each failure and the score (a development aid; the
//! `opsplane asl conformance` command is the supported entry point).

#[tokio::main]
async fn main() {
    let verbose = std::env::var("VERBOSE").is_ok();
    for arg in std::env::args().skip(1) {
        let report = opsplane_statemachines::conformance::run_file(std::path::Path::new(&arg))
            .await
            .expect("corpus file");
        for c in report.cases.iter().filter(|c| !c.passed) {
            println!("FAIL {}", c.id);
            if verbose {
                println!(
                    "  expected {}",
                    c.expected
                        .as_ref()
                        .map(|v| v.to_string())
                        .unwrap_or_default()
                        .chars()
                        .take(600)
                        .collect::<String>()
                );
                println!(
                    "  actual   {}",
                    c.actual
                        .as_ref()
                        .map(|v| v.to_string())
                        .unwrap_or_default()
                        .chars()
                        .take(600)
                        .collect::<String>()
                );
            }
        }
        if std::env::var("HISTORY").is_ok() {
            for c in report
                .cases
                .iter()
                .filter(|c| c.history_events.is_some_and(|[a, b]| a != b))
            {
                println!("HISTORY {:?} {}", c.history_events, c.id);
            }
        }
        if std::env::var("CAUSE").is_ok() {
            for c in report
                .cases
                .iter()
                .filter(|c| c.cause_matched == Some(false))
            {
                println!(
                    "CAUSE {}\n  expected {}\n  actual   {}",
                    c.id,
                    c.expected_cause.as_deref().unwrap_or(""),
                    c.actual_cause.as_deref().unwrap_or("")
                );
            }
        }
        if std::env::var("SHAPE").is_ok() {
            for c in report
                .cases
                .iter()
                .filter(|c| c.validation_shape == Some(false))
            {
                println!("SHAPE {}", c.id);
            }
        }
        let shape = report.validation_shape();
        let inspection = report.inspection();
        println!(
            "validation answers in AWS's shape {}/{}, inspection data matched {}/{}",
            shape.passed, shape.total, inspection.passed, inspection.total
        );
        let (cause, history) = report.secondary();
        println!(
            "causes matched {}/{}, history lengths matched {}/{}",
            cause.passed, cause.total, history.passed, history.total
        );
        let t = report.total();
        let j = report.jsonpath_only();
        println!(
            "{}: {}/{} ({:.1}%), JSONPath-only {}/{}",
            report.file,
            t.passed,
            t.total,
            t.percent(),
            j.passed,
            j.total
        );
    }
}
