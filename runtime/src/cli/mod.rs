//! Client subcommands of the `tollgate` binary: one per call of the `tollgate.v1` API, so a
//! newcomer can try every call from the shell against a running `tollgate serve`.
//!
//! ```text
//! tollgate customer create cus_1 --name Acme
//! tollgate subscribe cus_1 pro
//! tollgate grant cus_1 100
//! tollgate reserve cus_1 llm-tokens --units 2000 --agent support-bot
//! tollgate commit cus_1 42 --units 1800
//! tollgate balance cus_1 --json
//! ```
//!
//! Output is text for people, or the response as JSON with `--json`. Generated idempotency
//! keys and event ids go to stderr, so stdout stays clean for scripts.
//!
//! Exit codes: 0 on success and allowed decisions, 2 on denied decisions (and on ingested
//! events the server rejected), 1 on errors, printed on stderr as `error: <CODE>: <message>`
//! (with `--json`, also on stdout as `{"error": {"code", "message"}}`).

mod amount;
mod args;
mod commands;
mod connection;
mod error;
mod events;
mod ingest;
mod json;
mod keys;
mod tables;
mod text;
pub(crate) mod time;

#[cfg(test)]
mod component_tests;

pub use args::{
    BalanceArgs, CheckArgs, ClientArgs, ClientCommand, CommitArgs, CustomerCmd, DimensionArgs,
    EntriesArgs, GrantArgs, IngestArgs, ReleaseArgs, ReserveArgs, SubjectArgs, SubscribeArgs,
};
pub use error::ClientError;

use commands::Outcome;
use std::io::Write;
use std::process::ExitCode;

/// Exit code of a denied decision, so scripts can tell "no" from "broken".
pub const EXIT_DENIED: u8 = 2;
/// Exit code of a failed call or bad input.
pub const EXIT_ERROR: u8 = 1;

/// Runs one client subcommand and prints its answer. Errors are printed here (stderr) and
/// become exit code 1; the `Err` case is only for stdout failing.
pub async fn run(args: &ClientArgs, command: ClientCommand) -> anyhow::Result<ExitCode> {
    let reply = match commands::execute(args, command).await {
        Ok(reply) => reply,
        Err(err) => {
            eprintln!("error: {err}");
            if let Some(detail) = err.detail() {
                eprintln!("  cause: {detail}");
            }
            if args.json {
                let mut stdout = std::io::stdout().lock();
                writeln!(stdout, "{}", serde_json::to_string_pretty(&err.to_json())?)?;
            }
            return Ok(ExitCode::from(EXIT_ERROR));
        }
    };
    let output = if args.json {
        serde_json::to_string_pretty(&reply.json)?
    } else {
        reply.text.trim_end_matches('\n').to_owned()
    };
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{output}").and_then(|()| stdout.flush()) {
        // `tollgate entries cus_1 | head` closes the pipe early: not an error.
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => return Err(err.into()),
        _ => {}
    }
    Ok(match reply.outcome {
        Outcome::Done => ExitCode::SUCCESS,
        Outcome::Denied => ExitCode::from(EXIT_DENIED),
    })
}
