//! The command line's shape: what parses, what each command offers, the help and the completions.
use super::*;

#[test]
fn rollback_takes_a_reason_and_either_the_previous_or_a_version() {
    let ok = Cli::try_parse_from([
        "opsplane",
        "rollback",
        "--env",
        "staging",
        "--to",
        "v3",
        "--reason",
        "slow queries",
    ])
    .unwrap();
    assert!(
        matches!(ok.command, Command::Rollback(RollbackArgs { ref to, previous: false, .. }) if to.as_deref() == Some("v3"))
    );
    assert!(
        Cli::try_parse_from([
            "opsplane",
            "rollback",
            "--env",
            "staging",
            "--previous",
            "--reason",
            "r"
        ])
        .is_ok()
    );
    for bad in [
        vec!["opsplane", "rollback", "--env", "staging", "--reason", "r"],
        vec![
            "opsplane",
            "rollback",
            "--env",
            "staging",
            "--previous",
            "--to",
            "v1",
            "--reason",
            "r",
        ],
        vec!["opsplane", "rollback", "--env", "staging", "--previous"],
    ] {
        assert!(Cli::try_parse_from(&bad).is_err(), "{bad:?}");
    }
}

#[test]
fn run_accepts_exactly_the_workflows() {
    let cli = Cli::command();
    let run = cli.find_subcommand("run").expect("run is a subcommand");
    let workflow = run
        .get_arguments()
        .find(|a| a.get_id() == "workflow")
        .expect("run takes a workflow");
    let accepted: Vec<String> = workflow
        .get_possible_values()
        .iter()
        .map(|v| v.get_name().to_owned())
        .collect();
    let all: Vec<String> = Workflow::all()
        .iter()
        .map(|w| w.name().to_owned())
        .collect();
    assert_eq!(accepted, all);
    for w in Workflow::all() {
        let parsed = Cli::try_parse_from(["opsplane", "run", w.name(), "--env", "prod"]).unwrap();
        assert!(matches!(parsed.command, Command::Run(RunArgs { workflow, .. }) if workflow == w));
    }
    let err = Cli::try_parse_from(["opsplane", "run", "deploy", "--env", "prod"]).unwrap_err();
    assert!(err.to_string().contains("dr-drill"), "{err}");
}

#[test]
fn the_help_lists_every_workflow_for_run() {
    let help = Cli::command()
        .find_subcommand_mut("run")
        .expect("run is a subcommand")
        .render_long_help()
        .to_string();
    for w in Workflow::all() {
        assert!(help.contains(w.name()), "{help}");
    }
}

#[test]
fn every_table_command_offers_json() {
    let mut cli = Cli::command();
    for path in [
        &["history"][..],
        &["lock", "status"],
        &["plan"],
        &["drift"],
        &["audit"],
        &["report", "drill"],
        &["report", "fleet"],
        &["plan-capacity"],
    ] {
        let mut cmd = &mut cli;
        for name in path {
            cmd = cmd.find_subcommand_mut(name).expect("a subcommand");
        }
        assert!(
            cmd.get_arguments().any(|a| a.get_long() == Some("json")),
            "{path:?} has no --json"
        );
    }
}

#[test]
fn completions_are_generated_for_each_shell() {
    let script = |shell| {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "opsplane", &mut out);
        String::from_utf8(out).unwrap()
    };
    use clap_complete::Shell;
    for shell in [
        Shell::Bash,
        Shell::Zsh,
        Shell::Fish,
        Shell::Elvish,
        Shell::PowerShell,
    ] {
        assert!(script(shell).contains("history"), "{shell}");
    }
    // The workflows `run` accepts, where the shell completes a positional's values.
    for shell in [Shell::Bash, Shell::Zsh] {
        assert!(script(shell).contains("health-sweep"), "{shell}");
    }
}

#[test]
fn the_cli_definition_is_consistent() {
    Cli::command().debug_assert();
}
