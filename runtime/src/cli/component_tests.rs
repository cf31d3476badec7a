//! The client subcommands against an in-process tonic server with canned answers: real
//! connections, deadlines, status codes and exit codes, without the real engine.

use super::commands::{Outcome, execute};
use super::*;
use crate::grpc::proto::{
    self, CapLevel, CheckRequest, CheckResponse, CommitRequest, CommitResponse, Decision,
    GetBalanceRequest, GetBalanceResponse, GetCustomerRequest, GetCustomerResponse, GrantRequest,
    GrantResponse, IngestRequest, IngestResponse, JournalEntry, ListEntriesRequest,
    ListEntriesResponse, Reason, Rejection, ReleaseRequest, ReleaseResponse, ReserveRequest,
    ReserveResponse, SubscribeRequest, SubscribeResponse, UpsertCustomerRequest,
    UpsertCustomerResponse,
};
use clap::Parser;
use std::sync::{Arc, Mutex};
use tonic::{Request, Response, Status};

type Answer<T> = Result<Response<T>, Status>;

/// Canned answers; remembers the grants it was sent.
#[derive(Clone, Default)]
struct Fake {
    grants: Arc<Mutex<Vec<GrantRequest>>>,
    upserts: Arc<Mutex<Vec<UpsertCustomerRequest>>>,
}

fn require_key(key: &str) -> Result<(), Status> {
    if key.is_empty() {
        return Err(Status::invalid_argument("idempotency_key is required"));
    }
    Ok(())
}

#[tonic::async_trait]
impl proto::customers_server::Customers for Fake {
    async fn upsert_customer(
        &self,
        r: Request<UpsertCustomerRequest>,
    ) -> Answer<UpsertCustomerResponse> {
        require_key(&r.get_ref().idempotency_key)?;
        let request = r.into_inner();
        let created = request.customer_id != "cus_named";
        self.upserts.lock().unwrap().push(request);
        Ok(Response::new(UpsertCustomerResponse { created }))
    }
    async fn subscribe(&self, r: Request<SubscribeRequest>) -> Answer<SubscribeResponse> {
        require_key(&r.get_ref().idempotency_key)?;
        let plan = r.into_inner().plan;
        Ok(Response::new(SubscribeResponse {
            plan,
            start_ms: 0,
            grants_issued: 1,
        }))
    }
    async fn get_customer(&self, r: Request<GetCustomerRequest>) -> Answer<GetCustomerResponse> {
        let id = r.into_inner().customer_id;
        if id == "cus_named" {
            return Ok(Response::new(GetCustomerResponse {
                customer_id: id,
                display_name: "Acme Corp".into(),
                ..GetCustomerResponse::default()
            }));
        }
        Err(Status::not_found(format!("customer {id} does not exist")))
    }
}

#[tonic::async_trait]
impl proto::wallets_server::Wallets for Fake {
    async fn grant(&self, r: Request<GrantRequest>) -> Answer<GrantResponse> {
        require_key(&r.get_ref().idempotency_key)?;
        if let Ok(mut grants) = self.grants.lock() {
            grants.push(r.into_inner());
        }
        Ok(Response::new(GrantResponse {
            grant_id: 7,
            entry_id: 12,
            ..Default::default()
        }))
    }
    async fn get_balance(&self, _: Request<GetBalanceRequest>) -> Answer<GetBalanceResponse> {
        Ok(Response::new(GetBalanceResponse {
            available: 12_500_000,
            ..Default::default()
        }))
    }
    /// Three pages of one entry each; the token is the next entry id.
    async fn list_entries(&self, r: Request<ListEntriesRequest>) -> Answer<ListEntriesResponse> {
        let id: u64 = r.get_ref().page_token.parse().unwrap_or(1);
        let next_page_token = if id < 3 {
            (id + 1).to_string()
        } else {
            String::new()
        };
        let entries = vec![JournalEntry {
            id,
            kind: "grant".into(),
            ..Default::default()
        }];
        Ok(Response::new(ListEntriesResponse {
            entries,
            next_page_token,
        }))
    }
}

#[tonic::async_trait]
impl proto::enforcement_server::Enforcement for Fake {
    /// Allows up to 1000 units; above, an agent budget cap denies.
    async fn check(&self, r: Request<CheckRequest>) -> Answer<CheckResponse> {
        let decision = if r.get_ref().units <= 1_000 {
            Decision {
                allowed: true,
                reason: Reason::Allowed as i32,
                ..Default::default()
            }
        } else {
            Decision {
                reason: Reason::BudgetCap as i32,
                cap_level: CapLevel::Agent as i32,
                cap_name: "agent-daily-spend".into(),
                message: "over the cap".into(),
                ..Default::default()
            }
        };
        Ok(Response::new(CheckResponse {
            decision: Some(decision),
            ..Default::default()
        }))
    }
    async fn reserve(&self, _: Request<ReserveRequest>) -> Answer<ReserveResponse> {
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        Err(Status::internal("the client should have given up"))
    }
    async fn commit(&self, r: Request<CommitRequest>) -> Answer<CommitResponse> {
        require_key(&r.get_ref().idempotency_key)?;
        Ok(Response::new(CommitResponse {
            posted_micro_credits: 3_600,
            ..Default::default()
        }))
    }
    async fn release(&self, r: Request<ReleaseRequest>) -> Answer<ReleaseResponse> {
        let hold_id = r.get_ref().hold_id;
        Err(Status::not_found(format!("hold {hold_id} is not open")))
    }
}

#[tonic::async_trait]
impl proto::metering_server::Metering for Fake {
    /// Rejects events above 1000 units.
    async fn ingest(&self, r: Request<IngestRequest>) -> Answer<IngestResponse> {
        let events = r.into_inner().events;
        let rejected: Vec<Rejection> = (0u32..)
            .zip(&events)
            .filter(|(_, e)| e.quantity > 1_000)
            .map(|(index, _)| Rejection {
                index,
                reason: "too many units".into(),
            })
            .collect();
        let accepted = u32::try_from(events.len() - rejected.len()).unwrap_or(u32::MAX);
        Ok(Response::new(IngestResponse {
            accepted,
            rejected,
            ..Default::default()
        }))
    }
}

/// Serves the fake on a free port; returns its address and what it records.
async fn serve() -> (String, Fake) {
    let fake = Fake::default();
    let incoming =
        tonic::transport::server::TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = format!("http://{}", incoming.local_addr().unwrap());
    let router = tonic::transport::Server::builder()
        .add_service(proto::customers_server::CustomersServer::new(fake.clone()))
        .add_service(proto::wallets_server::WalletsServer::new(fake.clone()))
        .add_service(proto::enforcement_server::EnforcementServer::new(
            fake.clone(),
        ))
        .add_service(proto::metering_server::MeteringServer::new(fake.clone()));
    tokio::spawn(router.serve_with_incoming(incoming));
    (addr, fake)
}

#[derive(Parser)]
struct Line {
    #[command(flatten)]
    args: ClientArgs,
    #[command(subcommand)]
    cmd: ClientCommand,
}

fn line(addr: &str, words: &str) -> (ClientArgs, ClientCommand) {
    let words = ["tollgate", "--addr", addr]
        .into_iter()
        .chain(words.split_whitespace());
    let Line { args, cmd } = Line::try_parse_from(words).unwrap();
    (args, cmd)
}

#[tokio::test]
async fn grant_sends_exact_micro_credits_with_a_fresh_key() {
    let (addr, fake) = serve().await;
    let (args, cmd) = line(&addr, "grant cus_1 12.5 --promotional");
    let reply = execute(&args, cmd).await.unwrap();
    assert_eq!(
        reply.text,
        "granted 12.500000 credits to cus_1: grant 7, journal entry 12"
    );
    let grants = fake.grants.lock().unwrap().clone();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].amount_micro_credits, 12_500_000);
    assert_eq!(grants[0].category, proto::GrantCategory::Promotional as i32);
    assert!(grants[0].idempotency_key.starts_with("cli-"));
}

/// Without --name an existing customer keeps its name (the API sets the name it is
/// given, so sending none erased it); a new one gets none; --name renames.
#[tokio::test]
async fn customer_create_without_a_name_keeps_the_existing_one() {
    let (addr, fake) = serve().await;
    for words in [
        "customer create cus_named",
        "customer create cus_new",
        "customer create cus_named --name Acme",
    ] {
        let (args, cmd) = line(&addr, words);
        execute(&args, cmd).await.unwrap();
    }
    let names: Vec<(String, String)> = fake
        .upserts
        .lock()
        .unwrap()
        .iter()
        .map(|u| (u.customer_id.clone(), u.display_name.clone()))
        .collect();
    assert_eq!(
        names,
        [
            ("cus_named".into(), "Acme Corp".into()),
            ("cus_new".into(), String::new()),
            ("cus_named".into(), "Acme".into())
        ]
    );
}

#[tokio::test]
async fn allowed_and_denied_checks_map_to_exit_codes() {
    let (addr, _) = serve().await;
    let (args, cmd) = line(&addr, "check cus_1 llm-tokens --units 10");
    assert_eq!(execute(&args, cmd).await.unwrap().outcome, Outcome::Done);
    let (args, cmd) = line(&addr, "check cus_1 llm-tokens --units 5000 --agent bot");
    let reply = execute(&args, cmd).await.unwrap();
    assert_eq!(reply.outcome, Outcome::Denied);
    assert!(
        reply
            .text
            .starts_with("DENIED: budget cap agent-daily-spend (agent level): over the cap"),
        "{}",
        reply.text
    );
    assert_eq!(reply.json["decision"]["reason"], "REASON_BUDGET_CAP");
    let (args, cmd) = line(&addr, "check cus_1 llm-tokens --units 5000 --json");
    assert_eq!(
        run(&args, cmd).await.unwrap(),
        std::process::ExitCode::from(EXIT_DENIED)
    );
}

#[tokio::test]
async fn status_errors_print_code_and_message() {
    let (addr, _) = serve().await;
    let (args, cmd) = line(&addr, "customer get cus_9");
    let Err(err) = execute(&args, cmd).await else {
        panic!("found cus_9")
    };
    assert_eq!(err.to_string(), "NOT_FOUND: customer cus_9 does not exist");
    let (args, cmd) = line(&addr, "release cus_1 41 --key k1");
    assert_eq!(
        run(&args, cmd).await.unwrap(),
        std::process::ExitCode::from(EXIT_ERROR)
    );
}

#[tokio::test]
async fn a_slow_call_ends_at_the_deadline() {
    let (addr, _) = serve().await;
    let (args, cmd) = line(&addr, "reserve cus_1 llm-tokens --units 5 --timeout-ms 200");
    let started = std::time::Instant::now();
    let Err(err) = execute(&args, cmd).await else {
        panic!("reserve answered")
    };
    assert!(err.to_string().starts_with("DEADLINE_EXCEEDED"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
}

#[tokio::test]
async fn entries_all_follows_every_page() {
    let (addr, _) = serve().await;
    let (args, cmd) = line(&addr, "entries cus_1");
    let reply = execute(&args, cmd).await.unwrap();
    assert_eq!(reply.json["entries"].as_array().map(Vec::len), Some(1));
    assert!(reply.text.contains("--page-token 2"), "{}", reply.text);
    let (args, cmd) = line(&addr, "entries cus_1 --all");
    let reply = execute(&args, cmd).await.unwrap();
    let ids: Vec<u64> = reply.json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["id"].as_u64())
        .collect();
    assert_eq!(ids, [1, 2, 3]);
    assert_eq!(reply.json["next_page_token"], "");
}

#[tokio::test]
async fn ingest_file_rejections_name_lines_and_exit_2() {
    let (addr, _) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    std::fs::write(
        &path,
        "{\"id\":\"e1\",\"customer_id\":\"c\",\"feature\":\"f\",\"quantity\":5}\n\n\
         {\"id\":\"e2\",\"customer_id\":\"c\",\"feature\":\"f\",\"quantity\":5000}\n",
    )
    .unwrap();
    let (args, cmd) = line(&addr, &format!("ingest --file {}", path.display()));
    let reply = execute(&args, cmd).await.unwrap();
    assert_eq!(reply.outcome, Outcome::Denied);
    assert!(
        reply.text.ends_with("rejected line 3: too many units"),
        "{}",
        reply.text
    );
    let (args, cmd) = line(&addr, "ingest c f 5 --id e9");
    let reply = execute(&args, cmd).await.unwrap();
    assert_eq!(
        (reply.outcome, reply.json["accepted"].as_u64()),
        (Outcome::Done, Some(1))
    );
}
