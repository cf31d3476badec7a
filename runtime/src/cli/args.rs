//! The command line of the client subcommands: one clap struct per call of the API.

use super::time::parse_duration;
use std::path::PathBuf;
use std::time::Duration;

/// Options shared by every client subcommand (global: they may come before or after it).
/// Under their own help heading, since `global` also shows them in `serve --help`.
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Client options")]
pub struct ClientArgs {
    /// gRPC address of a running `tollgate serve`.
    #[arg(
        long,
        env = "TOLLGATE_ADDR",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    pub addr: String,
    /// Print the response as JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Deadline of the call.
    #[arg(
        long,
        env = "TOLLGATE_TIMEOUT_MS",
        default_value_t = 5000,
        global = true
    )]
    pub timeout_ms: u64,
}

/// Calls to a running `tollgate serve`, one subcommand per API call. Arguments are boxed
/// so the enum stays small next to the server's subcommands (clippy `large_enum_variant`).
#[derive(clap::Subcommand, Debug)]
pub enum ClientCommand {
    /// Create, rename or show a customer.
    #[command(subcommand)]
    Customer(CustomerCmd),
    /// Put a customer on a plan of the catalog.
    Subscribe(Box<SubscribeArgs>),
    /// Add credits to a customer's wallet.
    Grant(Box<GrantArgs>),
    /// Ask whether a customer may use a feature, without holding anything.
    Check(Box<CheckArgs>),
    /// Hold the estimated cost of a request; then `commit` or `release` the hold.
    Reserve(Box<ReserveArgs>),
    /// Post the actual usage of a hold; the rest is released.
    Commit(Box<CommitArgs>),
    /// Give a hold back unused.
    Release(Box<ReleaseArgs>),
    /// Show a wallet's credits: available, pending, upcoming, overdraft and per grant.
    Balance(Box<BalanceArgs>),
    /// List a wallet's journal entries, oldest first.
    Entries(Box<EntriesArgs>),
    /// Report usage that has happened: one event, or a JSON-lines file of them.
    Ingest(Box<IngestArgs>),
}

#[derive(clap::Subcommand, Debug)]
pub enum CustomerCmd {
    /// Create a customer, or rename it.
    Create {
        /// The customer, e.g. cus_1 (1 to 128 bytes).
        customer_id: String,
        /// Name for people (left out: a new customer has none, an existing one keeps its
        /// name).
        #[arg(long)]
        name: Option<String>,
        /// Idempotency key (default: a fresh one, printed on stderr).
        #[arg(long)]
        key: Option<String>,
    },
    /// Show a customer, its plan and its effective features.
    Get {
        /// The customer, e.g. cus_1.
        customer_id: String,
    },
}

#[derive(clap::Args, Debug)]
pub struct SubscribeArgs {
    /// The customer, e.g. cus_1.
    pub customer_id: String,
    /// A plan of the catalog.
    pub plan: String,
    /// Start of the subscription in ms since the Unix epoch (default: now). It may lie in
    /// the past (it anchors the plan's periods), not in the future: the plan takes effect
    /// when you subscribe.
    #[arg(long)]
    pub start_ms: Option<i64>,
    /// Idempotency key (default: a fresh one, printed on stderr).
    #[arg(long)]
    pub key: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct GrantArgs {
    /// The customer, e.g. cus_1.
    pub customer_id: String,
    /// Credits to add, up to 6 decimals (e.g. 100 or 12.5); with --micro, micro-credits.
    pub amount: String,
    /// The amount is in micro-credits (1 credit = 1,000,000).
    #[arg(long)]
    pub micro: bool,
    /// Given away (promotional expense) rather than paid for.
    #[arg(long)]
    pub promotional: bool,
    /// Consumption order: lower first.
    #[arg(long, default_value_t = 0)]
    pub priority: u32,
    /// The unspent rest expires after this long: 30d, 12h, 90m or 3600s (default: never).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub expires_in: Option<Duration>,
    /// The unspent rest expires at this time, in ms since the Unix epoch (to retry a grant
    /// made with --expires-in exactly: the CLI prints the value it computed).
    #[arg(long, conflicts_with = "expires_in")]
    pub expires_at_ms: Option<i64>,
    /// What the customer paid per credit, in micro-units of the billing currency.
    #[arg(long, default_value_t = 0)]
    pub cost_basis_micros: u64,
    /// Idempotency key (default: a fresh one, printed on stderr).
    #[arg(long)]
    pub key: Option<String>,
}

/// Who inside the customer makes the request: selects team, user and agent budget caps.
#[derive(clap::Args, Debug, Default)]
pub struct SubjectArgs {
    /// The customer's team making the request (team budget caps).
    #[arg(long)]
    pub team: Option<String>,
    /// The end user making the request (user budget caps).
    #[arg(long)]
    pub user: Option<String>,
    /// The AI agent acting for the user (agent budget caps).
    #[arg(long)]
    pub agent: Option<String>,
}

/// Dimensions of the usage, e.g. `--dim model=gpt-large` (repeatable).
#[derive(clap::Args, Debug, Default)]
pub struct DimensionArgs {
    /// A dimension of the usage, e.g. model=gpt-large (repeatable).
    #[arg(long = "dim", value_name = "KEY=VALUE", value_parser = parse_dimension)]
    pub dims: Vec<(String, String)>,
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// The customer, e.g. cus_1.
    pub customer_id: String,
    /// A feature id of the catalog, e.g. llm-tokens.
    pub feature: String,
    /// Units the caller intends to use (0: access only).
    #[arg(long, default_value_t = 0)]
    pub units: u64,
    #[command(flatten)]
    pub dimensions: DimensionArgs,
    #[command(flatten)]
    pub subject: SubjectArgs,
}

#[derive(clap::Args, Debug)]
pub struct ReserveArgs {
    /// The customer, e.g. cus_1.
    pub customer_id: String,
    /// A metered or boolean feature id.
    pub feature: String,
    /// Estimated units (metered features).
    #[arg(long, default_value_t = 0)]
    pub units: u64,
    #[command(flatten)]
    pub dimensions: DimensionArgs,
    #[command(flatten)]
    pub subject: SubjectArgs,
    /// How long the hold lasts if neither committed nor released (server default 60 s).
    /// Not `--timeout-ms`: that is the global deadline of the call.
    #[arg(long)]
    pub hold_timeout_ms: Option<u32>,
    /// Idempotency key (default: a fresh one, printed on stderr).
    #[arg(long)]
    pub key: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct CommitArgs {
    /// The customer, e.g. cus_1.
    pub customer_id: String,
    /// The hold id printed by `reserve`.
    pub hold_id: u64,
    /// Actual units used.
    #[arg(long)]
    pub units: u64,
    /// Idempotency key (default: a fresh one, printed on stderr).
    #[arg(long)]
    pub key: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct ReleaseArgs {
    /// The customer, e.g. cus_1.
    pub customer_id: String,
    /// The hold id printed by `reserve`.
    pub hold_id: u64,
    /// Idempotency key (default: a fresh one, printed on stderr).
    #[arg(long)]
    pub key: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct BalanceArgs {
    /// The customer, e.g. cus_1.
    pub customer_id: String,
}

#[derive(clap::Args, Debug)]
pub struct EntriesArgs {
    /// The customer, e.g. cus_1.
    pub customer_id: String,
    /// Entries per page (server default 100, at most 1000).
    #[arg(long)]
    pub page_size: Option<u32>,
    /// Where to start: the `next_page_token` of a previous page.
    #[arg(long)]
    pub page_token: Option<String>,
    /// Follow `next_page_token` to the last page.
    #[arg(long)]
    pub all: bool,
}

#[derive(clap::Args, Debug)]
pub struct IngestArgs {
    /// The customer, e.g. cus_1.
    #[arg(required_unless_present = "file")]
    pub customer_id: Option<String>,
    /// A metered feature id.
    #[arg(required_unless_present = "file")]
    pub feature: Option<String>,
    /// Units used (> 0).
    #[arg(required_unless_present = "file", value_parser = clap::value_parser!(u64).range(1..))]
    pub quantity: Option<u64>,
    /// Event id, unique per customer: a retry with the same id is a duplicate
    /// (default: a fresh one, printed on stderr).
    #[arg(long)]
    pub id: Option<String>,
    #[command(flatten)]
    pub dimensions: DimensionArgs,
    #[command(flatten)]
    pub subject: SubjectArgs,
    /// A JSON-lines file of events ("-" for stdin), one object a line: {"id", "customer_id",
    /// "feature", "quantity", "dimensions", "team", "user", "agent"}; "id" is required.
    #[arg(
        long,
        value_name = "PATH",
        conflicts_with_all = ["customer_id", "feature", "quantity", "id", "dims", "team", "user", "agent"]
    )]
    pub file: Option<PathBuf>,
}

/// Parses `key=value` (the value may contain `=`; the key may not be empty).
pub fn parse_dimension(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!(
            "{text:?} is not KEY=VALUE (for example model=gpt-large)"
        )),
    }
}

#[cfg(test)]
#[path = "args_tests.rs"]
mod tests;
