//! The `tollgate` binary: wiring only.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use tollgate_runtime::cli::{ClientArgs, ClientCommand};
use tollgate_runtime::engine::{Activity, recorded_count, recover_ledger, verify_recovered};
use tollgate_runtime::serve::{DynamoTablesArgs, ServeArgs, build_runtime, create_tables, serve};
use tollgate_runtime::store::embedded::EmbeddedStore;

#[derive(Parser)]
#[command(
    name = "tollgate",
    version,
    about = "Tollgate: decide, before the inference runs, whether a customer may use it and can pay"
)]
struct Cli {
    /// Log format.
    #[arg(
        long,
        env = "TOLLGATE_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    log_format: LogFormat,
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the runtime: gRPC API, HTTP health and metrics, catalog watching.
    Serve(Box<ServeArgs>),
    /// Recover every partition of an embedded store, recompute it from its journal and
    /// check every ledger invariant. Exits non-zero on the first violation. Reads only: a
    /// torn tail is reported, not cut (the next start cuts it); refused while a server has
    /// the directory.
    Verify {
        #[arg(long, env = "TOLLGATE_DATA_DIR", default_value = "./tollgate-data")]
        data_dir: PathBuf,
        /// The count is read from the store (the embedded store's data directory, the
        /// DynamoDB leases table); a different one given here is refused.
        #[arg(long, env = "TOLLGATE_PARTITIONS")]
        partitions: Option<u32>,
        /// Verify the DynamoDB store instead (takes each partition: run it with the
        /// server stopped).
        #[arg(long)]
        dynamodb: bool,
        #[command(flatten)]
        tables: DynamoTablesArgs,
    },
    /// Administer the DynamoDB store.
    #[command(subcommand)]
    Dynamodb(DynamoCmd),
    #[command(flatten)]
    Client(ClientCommand),
}

#[derive(Subcommand)]
enum DynamoCmd {
    /// Create the store's tables (journal, checkpoints, idempotency, leases) that do not
    /// exist yet. In production Terraform creates them (terraform/modules/dynamodb-ledger).
    CreateTables(DynamoTablesArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    let threads = match &cli.command {
        Cmd::Serve(args) => args.worker_threads,
        _ => 0,
    };
    match build_runtime(threads) {
        Ok((runtime, activity)) => runtime.block_on(run(cli, activity)),
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, activity: Arc<Activity>) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TOLLGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    let result = match cli.command {
        Cmd::Serve(args) => serve(*args, Some(activity)).await,
        Cmd::Verify {
            data_dir,
            partitions,
            dynamodb,
            tables,
        } => {
            if dynamodb {
                tollgate_runtime::serve::verify_dynamodb(&tables, partitions).map(print_reports)
            } else {
                verify(data_dir, partitions)
            }
        }
        Cmd::Dynamodb(DynamoCmd::CreateTables(args)) => create_tables(&args).map(|created| {
            for table in &created {
                println!("created {table}");
            }
            if created.is_empty() {
                println!("every table exists already");
            }
        }),
        Cmd::Client(command) => {
            return match tollgate_runtime::cli::run(&cli.client, command).await {
                Ok(code) => code,
                Err(error) => {
                    eprintln!("error: {error:#}");
                    ExitCode::FAILURE
                }
            };
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints clap's message and exits: 0 for `--help` and `--version`, 1 for a command line
/// that does not parse. Not clap's usual 2, which the client commands keep for a denied
/// decision: a script must not read a typo as a denial.
fn usage_error(error: &clap::Error) -> ExitCode {
    let _ = error.print();
    if error.use_stderr() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn print_reports(reports: Vec<tollgate_runtime::ledger::VerifyReport>) {
    for (p, report) in reports.iter().enumerate() {
        println!(
            "partition {p}: ok: {} entries, {} accounts, {} open holds, {} micro-credits posted",
            report.entries, report.accounts, report.open_holds, report.debits_posted
        );
    }
}

fn verify(data_dir: PathBuf, asked: Option<u32>) -> anyhow::Result<()> {
    let Some(partitions) = recorded_count(&data_dir)? else {
        anyhow::bail!(
            "{} holds no embedded store (no PARTITIONS file)",
            data_dir.display()
        );
    };
    if let Some(asked) = asked
        && asked != partitions
    {
        anyhow::bail!(
            "{} was created with {partitions} partitions, not {asked}",
            data_dir.display()
        );
    }
    for p in 0..partitions {
        let dir = data_dir.join(format!("partition-{p:04}"));
        let mut store = EmbeddedStore::open_read_only(&dir)?;
        let ledger =
            recover_ledger(&mut store).with_context(|| format!("recovering {}", dir.display()))?;
        let report = verify_recovered(&ledger, &store)
            .with_context(|| format!("verifying {}", dir.display()))?;
        println!(
            "partition {p}: ok: {} entries, {} accounts, {} open holds, {} micro-credits posted",
            report.entries, report.accounts, report.open_holds, report.debits_posted
        );
    }
    Ok(())
}
