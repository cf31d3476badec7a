//! Each client subcommand: check its input, make the call(s), and describe the answer both
//! as text and as JSON. Input is checked before connecting, so a typo fails fast.

use super::amount::{parse_credits, parse_micros};
use super::args::{
    BalanceArgs, CheckArgs, ClientArgs, ClientCommand, CommitArgs, CustomerCmd, DimensionArgs,
    EntriesArgs, GrantArgs, ReleaseArgs, ReserveArgs, SubscribeArgs,
};
use super::connection::Connection;
use super::error::ClientError;
use super::events;
use super::json::ToJson;
use super::keys::idempotency_key;
use super::time::{format_time_ms, ms_after, now_ms};
use super::{ingest, tables, text};
use crate::grpc::proto::{
    CheckRequest, CommitRequest, GetBalanceRequest, GetCustomerRequest, GrantCategory,
    GrantRequest, ListEntriesRequest, ListEntriesResponse, ReleaseRequest, ReserveRequest,
    SubscribeRequest, UpsertCustomerRequest,
};
use serde_json::Value;
use std::collections::HashMap;

/// Pages `entries --all` follows at most: with 1,000 entries a page, 10 million entries.
/// Bounds the loop should a server keep returning a next page.
const MAX_ENTRY_PAGES: usize = 10_000;

/// How a call ended for the exit code: denied decisions and rejected events exit 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    Denied,
}

/// The answer of a subcommand, ready to print either way.
pub struct Reply {
    pub text: String,
    pub json: Value,
    pub outcome: Outcome,
}

impl Reply {
    pub(super) fn done(text: String, json: Value) -> Self {
        Self {
            text,
            json,
            outcome: Outcome::Done,
        }
    }

    fn decided(text: String, json: Value, allowed: bool) -> Self {
        let outcome = if allowed {
            Outcome::Done
        } else {
            Outcome::Denied
        };
        Self {
            text,
            json,
            outcome,
        }
    }
}

pub async fn execute(args: &ClientArgs, command: ClientCommand) -> Result<Reply, ClientError> {
    match command {
        ClientCommand::Customer(CustomerCmd::Create {
            customer_id,
            name,
            key,
        }) => {
            let conn = Connection::open(args).await?;
            let display_name = match name {
                Some(name) => name,
                // The API sets the name it is given: without --name, an existing customer
                // keeps the one it has rather than losing it.
                None => {
                    let request = conn.request(GetCustomerRequest {
                        customer_id: customer_id.clone(),
                    });
                    match conn.call(conn.customers().get_customer(request)).await {
                        Ok(found) => found.display_name,
                        Err(ClientError::Rpc(status)) if status.code() == tonic::Code::NotFound => {
                            String::new()
                        }
                        Err(error) => return Err(error),
                    }
                }
            };
            let request = UpsertCustomerRequest {
                display_name,
                idempotency_key: idempotency_key(key),
                customer_id,
            };
            let customer_id = request.customer_id.clone();
            let response = conn
                .call(conn.customers().upsert_customer(conn.request(request)))
                .await?;
            let text = text::upsert_customer(&response, &customer_id);
            Ok(Reply::done(text, response.to_json()))
        }
        ClientCommand::Customer(CustomerCmd::Get { customer_id }) => {
            let conn = Connection::open(args).await?;
            let request = conn.request(GetCustomerRequest { customer_id });
            let response = conn.call(conn.customers().get_customer(request)).await?;
            Ok(Reply::done(tables::customer(&response), response.to_json()))
        }
        ClientCommand::Subscribe(subscribe) => subscribe_to_plan(args, *subscribe).await,
        ClientCommand::Grant(grant) => grant_credits(args, *grant).await,
        ClientCommand::Check(check) => check_feature(args, *check).await,
        ClientCommand::Reserve(reserve) => reserve_hold(args, *reserve).await,
        ClientCommand::Commit(commit) => commit_hold(args, *commit).await,
        ClientCommand::Release(release) => release_hold(args, *release).await,
        ClientCommand::Balance(balance) => {
            let BalanceArgs { customer_id } = *balance;
            let conn = Connection::open(args).await?;
            let request = conn.request(GetBalanceRequest { customer_id });
            let response = conn.call(conn.wallets().get_balance(request)).await?;
            let text = tables::balance(&response, now_ms());
            Ok(Reply::done(text, response.to_json()))
        }
        ClientCommand::Entries(entries) => list_entries(args, *entries).await,
        ClientCommand::Ingest(ingest) => ingest::ingest_usage(args, *ingest).await,
    }
}

async fn subscribe_to_plan(args: &ClientArgs, cmd: SubscribeArgs) -> Result<Reply, ClientError> {
    let request = SubscribeRequest {
        customer_id: cmd.customer_id,
        plan: cmd.plan,
        start_ms: cmd.start_ms.unwrap_or(0),
        idempotency_key: idempotency_key(cmd.key),
    };
    let customer_id = request.customer_id.clone();
    let conn = Connection::open(args).await?;
    let response = conn
        .call(conn.customers().subscribe(conn.request(request)))
        .await?;
    Ok(Reply::done(
        text::subscribe(&response, &customer_id),
        response.to_json(),
    ))
}

async fn grant_credits(args: &ClientArgs, cmd: GrantArgs) -> Result<Reply, ClientError> {
    let amount_micro_credits = if cmd.micro {
        parse_micros("amount", &cmd.amount)?
    } else {
        parse_credits("amount", &cmd.amount)?
    };
    if amount_micro_credits == 0 {
        return Err(ClientError::BadInput {
            field: "amount",
            value: cmd.amount,
            why: "must be more than zero".into(),
        });
    }
    let expires_at_ms = match (cmd.expires_in, cmd.expires_at_ms) {
        (Some(after), _) => {
            let at = ms_after(now_ms(), after).ok_or_else(|| ClientError::BadInput {
                field: "--expires-in",
                value: format!("{after:?}"),
                why: "too far in the future".into(),
            })?;
            // A retry must send the same request: say which absolute time this was.
            eprintln!(
                "expires at {} (to retry exactly, pass --expires-at-ms {at})",
                format_time_ms(at)
            );
            at
        }
        (None, at) => at.unwrap_or(0),
    };
    let category = if cmd.promotional {
        GrantCategory::Promotional
    } else {
        GrantCategory::Paid
    };
    let request = GrantRequest {
        customer_id: cmd.customer_id,
        amount_micro_credits,
        category: category as i32,
        priority: cmd.priority,
        effective_at_ms: 0,
        expires_at_ms,
        cost_basis_micros: cmd.cost_basis_micros,
        idempotency_key: idempotency_key(cmd.key),
    };
    let customer_id = request.customer_id.clone();
    let conn = Connection::open(args).await?;
    let response = conn
        .call(conn.wallets().grant(conn.request(request)))
        .await?;
    Ok(Reply::done(
        text::grant(&response, &customer_id, amount_micro_credits),
        response.to_json(),
    ))
}

/// `--dim` pairs as a map; a key given twice is a mistake, not "last one wins".
pub(super) fn dimensions(args: DimensionArgs) -> Result<HashMap<String, String>, ClientError> {
    let mut map = HashMap::with_capacity(args.dims.len());
    for (key, value) in args.dims {
        if map.contains_key(&key) {
            return Err(ClientError::BadInput {
                field: "--dim",
                value: format!("{key}={value}"),
                why: format!("dimension {key:?} is given twice"),
            });
        }
        map.insert(key, value);
    }
    Ok(map)
}

async fn check_feature(args: &ClientArgs, cmd: CheckArgs) -> Result<Reply, ClientError> {
    let request = CheckRequest {
        customer_id: cmd.customer_id,
        subject: events::subject(cmd.subject.team, cmd.subject.user, cmd.subject.agent),
        feature: cmd.feature,
        dimensions: dimensions(cmd.dimensions)?,
        units: cmd.units,
    };
    let conn = Connection::open(args).await?;
    let response = conn
        .call(conn.enforcement().check(conn.request(request)))
        .await?;
    let allowed = response.decision.as_ref().is_some_and(|d| d.allowed);
    Ok(Reply::decided(
        text::check(&response, cmd.units),
        response.to_json(),
        allowed,
    ))
}

async fn reserve_hold(args: &ClientArgs, cmd: ReserveArgs) -> Result<Reply, ClientError> {
    let request = ReserveRequest {
        customer_id: cmd.customer_id,
        subject: events::subject(cmd.subject.team, cmd.subject.user, cmd.subject.agent),
        feature: cmd.feature,
        dimensions: dimensions(cmd.dimensions)?,
        units: cmd.units,
        idempotency_key: idempotency_key(cmd.key),
        hold_timeout_ms: cmd.hold_timeout_ms.unwrap_or(0),
    };
    let customer_id = request.customer_id.clone();
    let conn = Connection::open(args).await?;
    let response = conn
        .call(conn.enforcement().reserve(conn.request(request)))
        .await?;
    let allowed = response.decision.as_ref().is_some_and(|d| d.allowed);
    Ok(Reply::decided(
        text::reserve(&response, &customer_id),
        response.to_json(),
        allowed,
    ))
}

async fn commit_hold(args: &ClientArgs, cmd: CommitArgs) -> Result<Reply, ClientError> {
    let request = CommitRequest {
        customer_id: cmd.customer_id,
        hold_id: cmd.hold_id,
        units: cmd.units,
        idempotency_key: idempotency_key(cmd.key),
    };
    let conn = Connection::open(args).await?;
    let response = conn
        .call(conn.enforcement().commit(conn.request(request)))
        .await?;
    Ok(Reply::done(
        text::commit(&response, cmd.hold_id),
        response.to_json(),
    ))
}

async fn release_hold(args: &ClientArgs, cmd: ReleaseArgs) -> Result<Reply, ClientError> {
    let request = ReleaseRequest {
        customer_id: cmd.customer_id,
        hold_id: cmd.hold_id,
        idempotency_key: idempotency_key(cmd.key),
    };
    let conn = Connection::open(args).await?;
    let response = conn
        .call(conn.enforcement().release(conn.request(request)))
        .await?;
    Ok(Reply::done(
        text::release(&response, cmd.hold_id),
        response.to_json(),
    ))
}

async fn list_entries(args: &ClientArgs, cmd: EntriesArgs) -> Result<Reply, ClientError> {
    let conn = Connection::open(args).await?;
    let mut wallets = conn.wallets();
    let mut all = ListEntriesResponse {
        entries: Vec::new(),
        next_page_token: cmd.page_token.unwrap_or_default(),
    };
    for _ in 0..MAX_ENTRY_PAGES {
        let request = ListEntriesRequest {
            customer_id: cmd.customer_id.clone(),
            page_size: cmd.page_size.unwrap_or(0),
            page_token: all.next_page_token.clone(),
        };
        let page = conn
            .call(wallets.list_entries(conn.request(request)))
            .await?;
        all.entries.extend(page.entries);
        // Stop on the last page, or on a server that hands back the token it was given.
        let stuck = page.next_page_token == all.next_page_token;
        all.next_page_token = page.next_page_token;
        if !cmd.all || all.next_page_token.is_empty() || stuck {
            break;
        }
    }
    let mut text = if all.entries.is_empty() {
        "no entries\n".to_owned()
    } else {
        tables::entries(&all.entries)
    };
    if !all.next_page_token.is_empty() {
        text.push_str(&format!(
            "more: tollgate entries {} --page-token {} (or --all)",
            cmd.customer_id, all.next_page_token
        ));
    }
    Ok(Reply::done(text, all.to_json()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_dimensions_are_refused() {
        let dims = DimensionArgs {
            dims: vec![("model".into(), "a".into()), ("model".into(), "b".into())],
        };
        let err = dimensions(dims).unwrap_err().to_string();
        assert!(err.contains("\"model\" is given twice"), "{err}");
        let dims = DimensionArgs {
            dims: vec![("model".into(), "a".into()), ("region".into(), "eu".into())],
        };
        assert_eq!(dimensions(dims).unwrap().len(), 2);
    }
}
