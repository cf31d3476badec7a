//! Parsing of the client subcommands through a wrapper shaped like `main.rs`: global client
//! options flattened at the top, client subcommands flattened next to the server's.

use super::*;
use clap::{CommandFactory, Parser};

#[derive(Parser, Debug)]
#[command(name = "tollgate")]
struct Cli {
    #[command(flatten)]
    args: ClientArgs,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Subcommand, Debug)]
enum Cmd {
    /// Stands in for the server's own subcommands.
    Verify,
    #[command(flatten)]
    Client(ClientCommand),
}

fn parse(line: &str) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("tollgate").chain(line.split_whitespace()))
}

fn client(line: &str) -> (ClientArgs, ClientCommand) {
    match parse(line) {
        Ok(Cli {
            args,
            cmd: Cmd::Client(cmd),
        }) => (args, cmd),
        other => panic!("{line:?} did not parse as a client command: {other:?}"),
    }
}

#[test]
fn command_definition_is_consistent() {
    // Panics on clashing flags (a subcommand's `--timeout-ms` against the global one).
    Cli::command().debug_assert();
}

#[test]
fn global_options_have_defaults_and_go_anywhere() {
    let (args, _) = client("balance cus_1");
    assert_eq!(args.addr, "http://127.0.0.1:50051");
    assert_eq!(args.timeout_ms, 5000);
    assert!(!args.json);
    let (args, _) = client("balance cus_1 --json --addr http://h:1 --timeout-ms 50");
    assert_eq!(
        (args.addr.as_str(), args.json, args.timeout_ms),
        ("http://h:1", true, 50)
    );
    let (args, _) = client("--json balance cus_1");
    assert!(args.json);
}

#[test]
fn parses_customer_create_and_get() {
    let line = [
        "tollgate",
        "customer",
        "create",
        "cus_1",
        "--name",
        "Acme Corp",
    ];
    let Ok(Cli {
        cmd: Cmd::Client(ClientCommand::Customer(cmd)),
        ..
    }) = Cli::try_parse_from(line)
    else {
        panic!("customer create did not parse");
    };
    assert!(matches!(
        cmd,
        CustomerCmd::Create { ref customer_id, name: Some(ref name), key: None }
            if customer_id == "cus_1" && name == "Acme Corp"
    ));
    let (_, cmd) = client("customer get cus_1");
    assert!(matches!(
        cmd,
        ClientCommand::Customer(CustomerCmd::Get { ref customer_id }) if customer_id == "cus_1"
    ));
}

#[test]
fn parses_grant_with_every_option() {
    let (_, cmd) = client(
        "grant cus_1 12.5 --promotional --priority 3 --expires-in 30d --cost-basis-micros 9 \
         --key k1",
    );
    let ClientCommand::Grant(grant) = cmd else {
        panic!("not a grant: {cmd:?}")
    };
    assert_eq!(grant.customer_id, "cus_1");
    assert_eq!(grant.amount, "12.5");
    assert!(grant.promotional && !grant.micro);
    assert_eq!(grant.priority, 3);
    assert_eq!(grant.expires_in, Some(Duration::from_secs(30 * 86_400)));
    assert_eq!(grant.cost_basis_micros, 9);
    assert_eq!(grant.key.as_deref(), Some("k1"));
    let (_, cmd) = client("grant cus_1 2500000 --micro");
    let ClientCommand::Grant(grant) = cmd else {
        panic!("not a grant: {cmd:?}")
    };
    assert!(grant.micro && grant.expires_in.is_none() && grant.key.is_none());
}

#[test]
fn rejects_a_bad_expiry() {
    let err = parse("grant cus_1 100 --expires-in 30").unwrap_err();
    assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    assert!(err.to_string().contains("needs a unit"), "{err}");
}

#[test]
fn parses_check_with_dimensions_and_subject() {
    let (_, cmd) = client(
        "check cus_1 llm-tokens --units 2000 --dim model=gpt-large --dim region=eu=west \
         --team research --user u42 --agent support-bot",
    );
    let ClientCommand::Check(check) = cmd else {
        panic!("not a check: {cmd:?}")
    };
    assert_eq!(check.units, 2000);
    assert_eq!(
        check.dimensions.dims,
        [
            ("model".into(), "gpt-large".into()),
            ("region".into(), "eu=west".into())
        ]
    );
    assert_eq!(check.subject.team.as_deref(), Some("research"));
    assert_eq!(check.subject.user.as_deref(), Some("u42"));
    assert_eq!(check.subject.agent.as_deref(), Some("support-bot"));
    assert!(parse("check cus_1 llm-tokens --dim model").is_err());
    assert!(parse("check cus_1 llm-tokens --dim =x").is_err());
}

#[test]
fn parses_reserve_commit_release() {
    let (args, cmd) = client(
        "reserve cus_1 llm-tokens --units 2000 --agent bot --hold-timeout-ms 30000 \
         --timeout-ms 100 --key r1",
    );
    assert_eq!(args.timeout_ms, 100);
    let ClientCommand::Reserve(reserve) = cmd else {
        panic!("not a reserve: {cmd:?}")
    };
    assert_eq!(
        (reserve.units, reserve.hold_timeout_ms),
        (2000, Some(30_000))
    );
    assert_eq!(reserve.key.as_deref(), Some("r1"));

    let (_, cmd) = client("commit cus_1 42 --units 1800");
    let ClientCommand::Commit(commit) = cmd else {
        panic!("not a commit: {cmd:?}")
    };
    assert_eq!((commit.hold_id, commit.units, commit.key), (42, 1800, None));
    assert!(parse("commit cus_1 42").is_err(), "--units is required");
    assert!(parse("commit cus_1 hold-42 --units 1").is_err());

    let (_, cmd) = client("release cus_1 42 --key k9");
    let ClientCommand::Release(release) = cmd else {
        panic!("not a release: {cmd:?}")
    };
    assert_eq!((release.hold_id, release.key.as_deref()), (42, Some("k9")));
}

#[test]
fn parses_balance_and_entries() {
    let (_, cmd) = client("balance cus_1");
    assert!(matches!(cmd, ClientCommand::Balance(ref b) if b.customer_id == "cus_1"));
    let (_, cmd) = client("entries cus_1 --page-size 10 --page-token abc --all");
    let ClientCommand::Entries(entries) = cmd else {
        panic!("not entries: {cmd:?}")
    };
    assert_eq!(entries.page_size, Some(10));
    assert_eq!(entries.page_token.as_deref(), Some("abc"));
    assert!(entries.all);
}

#[test]
fn parses_ingest_of_one_event_or_a_file() {
    let (_, cmd) = client("ingest cus_1 llm-tokens 1500 --id evt-1 --dim model=m --agent a");
    let ClientCommand::Ingest(ingest) = cmd else {
        panic!("not ingest: {cmd:?}")
    };
    assert_eq!(ingest.customer_id.as_deref(), Some("cus_1"));
    assert_eq!(ingest.feature.as_deref(), Some("llm-tokens"));
    assert_eq!(ingest.quantity, Some(1500));
    assert_eq!(ingest.id.as_deref(), Some("evt-1"));
    assert!(ingest.file.is_none());

    let (_, cmd) = client("ingest --file events.jsonl");
    let ClientCommand::Ingest(ingest) = cmd else {
        panic!("not ingest: {cmd:?}")
    };
    assert_eq!(ingest.file, Some(PathBuf::from("events.jsonl")));
    assert!(ingest.customer_id.is_none());

    assert!(
        parse("ingest cus_1 llm-tokens").is_err(),
        "quantity is required"
    );
    assert!(parse("ingest cus_1 llm-tokens 5 --file e.jsonl").is_err());
    assert!(parse("ingest --file e.jsonl --agent a").is_err());
}

#[test]
fn server_subcommands_still_parse() {
    assert!(matches!(parse("verify").map(|c| c.cmd), Ok(Cmd::Verify)));
}

#[test]
fn client_command_stays_small_next_to_server_subcommands() {
    // clippy's `large_enum_variant` fires at 200 bytes of difference in main's `Cmd`.
    assert!(std::mem::size_of::<ClientCommand>() <= 128);
}
