//! What an operator reads: every report, table, line and error the CLI's commands produce over one
//! environment, scanned for Rust `Debug` output, and every `--json` output parsed back.

use opsplane_shared::aws::objects::ObjectStore;
use serde_json::{Value, json};

use crate::backup::Plane;
use crate::harness::{root, unique};

/// Fails when `text` shows Rust rather than words (`opsplane_shared::domain::readable::rust_text`), an
/// escaped quote (`{:?}` of a string), or `None` anywhere (what the CLI prints never says it).
fn assert_readable(what: &str, text: &str) {
    if let Some(found) = opsplane_shared::domain::readable::rust_text(text) {
        panic!("{what} shows {found}: {text}");
    }
    for marker in ["\\\"", "None"] {
        assert!(!text.contains(marker), "{what} shows {marker}: {text}");
    }
}

/// Parses a `--json` output, printed as the commands print it (`serde_json::to_string_pretty`).
fn parsed(printed: serde_json::Result<String>) -> Value {
    serde_json::from_str(&printed.expect("serialisable")).expect("the output is JSON")
}

#[tokio::test]
async fn cli_output_reports_and_errors_show_no_debug_output_and_json_outputs_parse() {
    let plane = Plane::backed_up_and_drilled_past_its_target().await;
    let mut read = Vec::<(String, String)>::new();

    // history
    let store = plane.store();
    let entries = opsplane_cli::history::history(&store, &plane.env, 20)
        .await
        .unwrap();
    for e in &entries {
        read.push(("history".into(), e.render()));
    }
    let history = parsed(serde_json::to_string_pretty(&entries));
    let kinds: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["drill", "backup"]);
    assert_eq!(history[0]["status"], "MISSED");
    assert!(history[1]["at"].as_str().unwrap().ends_with('Z'));

    // report drill, its HTML page, and --json
    let objects = ObjectStore::new(
        plane.world.clients.s3.clone(),
        plane.world.config.bucket_name.clone(),
    );
    let out_dir = std::env::temp_dir().join(unique("readable"));
    std::fs::create_dir_all(&out_dir).unwrap();
    let listed = opsplane_cli::report::drill(&objects, &plane.env, false, &out_dir)
        .await
        .unwrap();
    read.push(("report drill".into(), listed.text.clone()));
    let latest = opsplane_cli::report::drill(&objects, &plane.env, true, &out_dir)
        .await
        .unwrap();
    read.push(("report drill --latest".into(), latest.text.clone()));
    let page = std::fs::read_to_string(latest.html_file.as_ref().unwrap()).unwrap();
    assert!(page.contains("deletion protection no"), "{page}");
    assert!(page.contains(" UTC"), "timestamps carry their zone: {page}");
    read.push(("the drill's HTML page".into(), page));
    let reports = parsed(serde_json::to_string_pretty(&listed.reports));
    assert_eq!(reports.as_array().unwrap().len(), 1);
    assert_eq!(reports[0]["environment"], plane.env.as_str());
    assert_eq!(reports[0]["verdict"], "target-missed");
    assert_eq!(
        parsed(serde_json::to_string_pretty(&latest.reports)),
        reports
    );
    let missing = opsplane_cli::report::drill(&objects, "nowhere", false, &out_dir)
        .await
        .unwrap_err();
    read.push(("report drill, no report".into(), missing.to_string()));

    // lock status --json: nothing held after the workflows
    let locks = plane.local.lock().list().await.unwrap();
    assert_eq!(parsed(serde_json::to_string_pretty(&locks)), json!([]));

    // audit
    let audit = opsplane_cli::audit::audit(&store, &plane.env, None)
        .await
        .unwrap();
    read.push(("audit".into(), opsplane_cli::audit::render(&audit)));
    assert!(parsed(serde_json::to_string_pretty(&audit)).is_object());

    // plan, from the spec the environment was seeded with
    let spec_file = out_dir.join("spec.yaml");
    let spec_text =
        std::fs::read_to_string(root().join("tests/fixtures/specs/drill-tight-rto.yaml"))
            .unwrap()
            .replace("{env}", &plane.env);
    std::fs::write(&spec_file, spec_text).unwrap();
    let clients = &plane.world.clients;
    let plan = opsplane_cli::plan::plan_file(clients, &plane.env, &spec_file)
        .await
        .unwrap();
    read.push(("plan".into(), plan.render_table()));
    assert!(parsed(serde_json::to_string_pretty(&plan)).is_object());
    let wrong = opsplane_cli::plan::plan_file(clients, "elsewhere", &spec_file)
        .await
        .unwrap_err();
    read.push(("plan, another environment".into(), format!("{wrong:#}")));
    // A spec with three problems: each reported once, with its line and what is allowed, in the spec's terms.
    let bad_file = out_dir.join("three-problems.yaml");
    std::fs::write(
        &bad_file,
        std::fs::read_to_string(root().join("tests/fixtures/specs/three-problems.yaml"))
            .unwrap()
            .replace("{env}", &plane.env),
    )
    .unwrap();
    let bad = opsplane_cli::plan::plan_file(clients, &plane.env, &bad_file)
        .await
        .unwrap_err();
    let bad = format!("{bad:#}");
    for (field, line, allowed) in [
        ("rds[0].instance_clas", 7, "did you mean `instance_class`"),
        (
            "rds[0].allocated_storage_gb",
            8,
            "a whole number of GiB from 20 to 65536",
        ),
        ("rds[0].multi_az", 9, "true or false"),
    ] {
        assert_eq!(bad.matches(field).count(), 1, "{field} once in: {bad}");
        assert!(bad.contains(&format!("line {line}, `{field}`")), "{bad}");
        assert!(bad.contains(allowed), "{bad}");
    }
    for rust in ["u32", "String", "Option"] {
        assert!(!bad.contains(rust), "{rust} in: {bad}");
    }
    read.push(("plan, a spec with three problems".into(), bad));

    // drift
    let provision =
        opsplane_fn_provision::Deps::new(plane.world.config.clone(), &plane.world.clients);
    let drift = opsplane_fn_provision::drift::report(&provision, &plane.env)
        .await
        .unwrap();
    read.push(("drift".into(), drift.render()));
    assert!(parsed(serde_json::to_string_pretty(&drift)).is_object());

    // errors of `run`
    let input = opsplane_cli::run::workflow_input(&plane.env, Some(json!({"environment": "x"})))
        .unwrap_err();
    read.push(("run --input".into(), input.to_string()));
    let unknown = "deploy"
        .parse::<opsplane_statemachines::Workflow>()
        .unwrap_err();
    read.push(("run deploy".into(), unknown.to_string()));

    for (what, text) in &read {
        assert_readable(what, text);
    }
}

#[test]
fn cli_output_scan_catches_debug_forms() {
    use opsplane_shared::domain::readable::rust_text;
    assert!(rust_text("Instance { class: x }").is_some());
    assert!(rust_text("body{font-family:sans-serif} td { color: red }").is_none());
}
