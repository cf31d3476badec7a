//! The `tollgate` binary's exit codes for command lines that do not parse: 1, like any other
//! error, never the 2 a denied decision exits with; 0 for `--help` and `--version`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(tollgate_e2e::tollgate_bin().unwrap())
        .args(args)
        .output()
        .expect("run tollgate");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_command_line_that_does_not_parse_exits_1_not_the_denial_code() {
    for args in [
        &["grant", "cus_acme", "-5"][..],
        &["commit", "cus_acme", "1"],
        &[
            "reserve",
            "cus_acme",
            "llm-tokens",
            "--units",
            "18446744073709551616",
        ],
        &["no-such-command"],
    ] {
        let (code, _, stderr) = run(args);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("error"), "{args:?}: {stderr}");
    }
}

#[test]
fn help_and_version_exit_0() {
    let (code, stdout, _) = run(&["--help"]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("Usage"), "{stdout}");
    let (code, stdout, _) = run(&["--version"]);
    assert_eq!(code, Some(0));
    assert!(stdout.starts_with("tollgate "), "{stdout}");
}
