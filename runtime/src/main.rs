//! The `tollgate` binary: wiring only.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use tollgate_runtime::engine::recover_ledger;
use tollgate_runtime::ledger::LedgerConfig;
use tollgate_runtime::store::embedded::EmbeddedStore;

#[derive(Parser)]
#[command(name = "tollgate", version, about = "Tollgate usage runtime")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Recover every partition of an embedded store, recompute it from its journal and
    /// check every ledger invariant. Exits non-zero on the first violation.
    Verify {
        /// Data directory of the embedded store.
        #[arg(long, env = "TOLLGATE_DATA_DIR", default_value = "./tollgate-data")]
        data_dir: PathBuf,
        /// Number of partitions the data directory was created with.
        #[arg(long, env = "TOLLGATE_PARTITIONS", default_value_t = 1)]
        partitions: u32,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Cmd::Verify {
            data_dir,
            partitions,
        } => verify(data_dir, partitions).await,
    }
}

async fn verify(data_dir: PathBuf, partitions: u32) -> anyhow::Result<()> {
    for p in 0..partitions {
        let dir = data_dir.join(format!("partition-{p:04}"));
        let mut store = EmbeddedStore::open(&dir)?;
        let ledger = recover_ledger(&mut store, LedgerConfig::default())
            .with_context(|| format!("recovering {}", dir.display()))?;
        let report = ledger
            .verify()
            .with_context(|| format!("verifying {}", dir.display()))?;
        println!(
            "partition {p}: ok: {} entries, {} accounts, {} open holds, {} credits posted",
            report.entries, report.accounts, report.open_holds, report.debits_posted
        );
    }
    Ok(())
}
