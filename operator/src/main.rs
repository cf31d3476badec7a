use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tollgate_operator::run::run(tollgate_operator::config::Config::parse()).await
}
