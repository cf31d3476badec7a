//! `kill -9` of `tollgate serve` under load, then a restart on the same data directory:
//! every acknowledged Grant, Reserve and Commit is still there, and retrying it with the
//! same idempotency key returns the identical answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tollgate_e2e::dynamodb::{CREDENTIALS, DynamoLocal};
use tollgate_e2e::proto::{
    CommitRequest, CommitResponse, GrantRequest, GrantResponse, ReserveRequest, ReserveResponse,
};
use tollgate_e2e::{
    CatalogDir, Clients, Server, ServerOptions, credits, now_ms, paid_grant_at, unique_key,
};

const CUSTOMERS: usize = 8;
const WORKERS: usize = 16;
/// Upper bound on the steps of one worker, so the load stops by itself.
const MAX_STEPS_PER_WORKER: usize = 20_000;
const INITIAL_CREDITS: u64 = 10;

/// One call a worker made: its request and, when acknowledged, the answer.
#[derive(Clone, Debug)]
enum Call {
    Grant(GrantRequest, Option<GrantResponse>),
    Reserve(Box<ReserveRequest>, Option<Box<ReserveResponse>>),
    Commit(CommitRequest, Option<CommitResponse>),
}

impl Call {
    fn acked(&self) -> bool {
        match self {
            Call::Grant(_, r) => r.is_some(),
            Call::Reserve(_, r) => r.is_some(),
            Call::Commit(_, r) => r.is_some(),
        }
    }
}

/// Every call of every worker, in the order each worker made them.
#[derive(Default)]
struct Journal(Mutex<Vec<Call>>);

impl Journal {
    fn push(&self, call: Call) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(call);
    }
    fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

fn customer(i: usize) -> String {
    format!("cus_crash_{i}")
}

/// Grant 1 credit, reserve 1 unit (1 credit), commit it; again, until an error or `stop`.
/// Every call goes into the journal, acknowledged or not; the first error ends the worker.
async fn worker(c: Clients, customer_id: String, stop: Arc<AtomicBool>, journal: Arc<Journal>) {
    let (mut wallets, mut enforcement) = (c.wallets.clone(), c.enforcement.clone());
    for _ in 0..MAX_STEPS_PER_WORKER {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        // An explicit effective time, so a retry is the same request: "0: now" is
        // idempotency.rs's subject.
        let grant = paid_grant_at(
            &customer_id,
            credits(1),
            &unique_key("crash-grant"),
            now_ms(),
        );
        match wallets.grant(grant.clone()).await {
            Ok(r) => journal.push(Call::Grant(grant, Some(r.into_inner()))),
            Err(_) => return journal.push(Call::Grant(grant, None)),
        }
        let reserve = ReserveRequest {
            customer_id: customer_id.clone(),
            feature: "e2e.units".into(),
            units: 1,
            idempotency_key: unique_key("crash-reserve"),
            hold_timeout_ms: 3_600_000,
            ..Default::default()
        };
        let held = match enforcement.reserve(reserve.clone()).await {
            Ok(r) => {
                let r = r.into_inner();
                journal.push(Call::Reserve(Box::new(reserve), Some(Box::new(r.clone()))));
                r
            }
            Err(_) => return journal.push(Call::Reserve(Box::new(reserve), None)),
        };
        if !held.decision.as_ref().is_some_and(|d| d.allowed) {
            continue;
        }
        let commit = CommitRequest {
            customer_id: customer_id.clone(),
            hold_id: held.hold_id,
            units: 1,
            idempotency_key: unique_key("crash-commit"),
        };
        match enforcement.commit(commit.clone()).await {
            Ok(r) => journal.push(Call::Commit(commit, Some(r.into_inner()))),
            Err(_) => return journal.push(Call::Commit(commit, None)),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_load_loses_no_acknowledged_write() -> anyhow::Result<()> {
    let catalog = CatalogDir::examples_plus_e2e()?;
    kill_9_scenario(ServerOptions::new(catalog.path()), Vec::new(), Vec::new()).await
}

/// The same on the DynamoDB store (DynamoDB Local), verified from DynamoDB afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_load_on_dynamodb_loses_no_acknowledged_write() -> anyhow::Result<()> {
    let Some(local) = DynamoLocal::start()? else {
        return Ok(());
    };
    let catalog = CatalogDir::examples_plus_e2e()?;
    let tables = vec![
        "--dynamodb-endpoint".to_string(),
        local.endpoint(),
        "--region".into(),
        "us-east-1".into(),
        "--table-prefix".into(),
        "e2e-crash-".into(),
    ];
    let mut options = ServerOptions::new(catalog.path());
    options.extra_args = [
        vec![
            "--store".to_string(),
            "dynamodb".into(),
            "--dynamodb-auto-create".into(),
        ],
        tables.clone(),
    ]
    .concat();
    let env: Vec<(String, String)> = CREDENTIALS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    options.extra_env = env.clone();
    let verify = [vec!["--dynamodb".to_string()], tables].concat();
    kill_9_scenario(options, verify, env).await
}

/// Load, `kill -9`, restart, then: every acknowledged call present, retries identical,
/// in-flight calls applied at most once, and `tollgate verify` (with `verify_args`) passes.
async fn kill_9_scenario(
    options: ServerOptions,
    verify_args: Vec<String>,
    verify_env: Vec<(String, String)>,
) -> anyhow::Result<()> {
    let mut server = Server::start(options).await?;
    let setup = server.clients().await?;
    for i in 0..CUSTOMERS {
        setup.create_subscribed(&customer(i), "e2e").await?;
        setup.grant(&customer(i), credits(INITIAL_CREDITS)).await?;
    }

    // Load: WORKERS workers on 4 connections, 2 per customer.
    let mut conns = Vec::new();
    for _ in 0..4 {
        conns.push(server.clients().await?);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let journal = Arc::new(Journal::default());
    let mut workers = JoinSet::new();
    for w in 0..WORKERS {
        workers.spawn(worker(
            conns[w % conns.len()].clone(),
            customer(w % CUSTOMERS),
            stop.clone(),
            journal.clone(),
        ));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill9();
    let killed_at = Instant::now();
    // Calls in flight fail once the connection is gone; every worker ends soon after.
    tokio::time::timeout(Duration::from_secs(45), async {
        while workers.join_next().await.is_some() {}
    })
    .await
    .map_err(|_| anyhow::anyhow!("workers did not stop after the kill"))?;
    stop.store(true, Ordering::Relaxed);
    eprintln!("workers stopped {:?} after the kill", killed_at.elapsed());
    let calls = journal.take();
    let acked = calls.iter().filter(|c| c.acked()).count();
    eprintln!("{} calls, {acked} acknowledged before kill -9", calls.len());
    assert!(
        acked >= 30,
        "too little load before the kill: {acked} acknowledged calls"
    );

    server.restart().await?;
    let c = server.clients().await?;

    // 1. Every acknowledged call is in the journal and the balances.
    let mut entry_ids: BTreeMap<String, HashSet<(String, u64)>> = BTreeMap::new();
    let mut grant_ids: BTreeMap<String, HashSet<u64>> = BTreeMap::new();
    let mut entry_by_id: BTreeMap<String, HashSet<u64>> = BTreeMap::new();
    for i in 0..CUSTOMERS {
        let id = customer(i);
        let entries = c.all_entries(&id).await?;
        entry_ids.insert(
            id.clone(),
            entries
                .iter()
                .map(|e| (e.kind.clone(), e.subject_id))
                .collect(),
        );
        entry_by_id.insert(id.clone(), entries.iter().map(|e| e.id).collect());
        let bal = c.balance(&id).await?;
        grant_ids.insert(id, bal.grants.iter().map(|g| g.grant_id).collect());
    }
    for call in calls.iter().filter(|c| c.acked()) {
        match call {
            Call::Grant(req, Some(resp)) => {
                assert!(
                    grant_ids[&req.customer_id].contains(&resp.grant_id),
                    "acknowledged grant {resp:?} of {} is gone after the restart",
                    req.customer_id
                );
                assert!(
                    entry_by_id[&req.customer_id].contains(&resp.entry_id),
                    "journal entry {} of an acknowledged grant is gone",
                    resp.entry_id
                );
            }
            Call::Reserve(req, Some(resp)) if resp.hold_id != 0 => {
                assert!(
                    entry_ids[&req.customer_id].contains(&("hold".to_string(), resp.hold_id)),
                    "acknowledged hold {} of {} is gone after the restart",
                    resp.hold_id,
                    req.customer_id
                );
            }
            Call::Commit(req, Some(_)) => {
                assert!(
                    entry_ids[&req.customer_id].contains(&("commit".to_string(), req.hold_id)),
                    "acknowledged commit of hold {} of {} is gone after the restart",
                    req.hold_id,
                    req.customer_id
                );
            }
            _ => {}
        }
    }

    // 2. Retrying an acknowledged call returns the identical answer.
    let (mut wallets, mut enforcement) = (c.wallets.clone(), c.enforcement.clone());
    for call in calls.iter().filter(|c| c.acked()) {
        match call {
            Call::Grant(req, Some(resp)) => {
                let again = wallets.grant(req.clone()).await?.into_inner();
                assert_eq!(&again, resp, "Grant retry {}", req.idempotency_key);
            }
            Call::Reserve(req, Some(resp)) => {
                let again = enforcement.reserve(*req.clone()).await?.into_inner();
                assert_eq!(
                    &again,
                    resp.as_ref(),
                    "Reserve retry {}",
                    req.idempotency_key
                );
            }
            Call::Commit(req, Some(resp)) => {
                let again = enforcement.commit(req.clone()).await?.into_inner();
                assert_eq!(&again, resp, "Commit retry {}", req.idempotency_key);
            }
            _ => {}
        }
    }

    // 3. Retrying the calls that were in flight at the kill applies each at most once: after
    // that, every call happened exactly once, and the balances add up to the cent.
    let mut granted: BTreeMap<String, u64> = BTreeMap::new();
    let mut committed: BTreeMap<String, u64> = BTreeMap::new();
    let mut open_holds: BTreeMap<String, HashSet<u64>> = BTreeMap::new();
    for i in 0..CUSTOMERS {
        granted.insert(customer(i), credits(INITIAL_CREDITS));
    }
    for call in &calls {
        match call {
            Call::Grant(req, resp) => {
                if resp.is_none() {
                    wallets.grant(req.clone()).await?;
                }
                *granted.get_mut(&req.customer_id).unwrap() += req.amount_micro_credits;
            }
            Call::Reserve(req, resp) => {
                let resp = match resp {
                    Some(r) => *r.clone(),
                    None => enforcement.reserve(*req.clone()).await?.into_inner(),
                };
                if resp.decision.as_ref().is_some_and(|d| d.allowed) {
                    open_holds
                        .entry(req.customer_id.clone())
                        .or_default()
                        .insert(resp.hold_id);
                }
            }
            Call::Commit(req, resp) => {
                let resp = match resp {
                    Some(r) => *r,
                    None => enforcement.commit(req.clone()).await?.into_inner(),
                };
                assert_eq!(resp.posted_micro_credits, credits(1), "{resp:?}");
                *committed.entry(req.customer_id.clone()).or_default() += credits(1);
                open_holds
                    .entry(req.customer_id.clone())
                    .or_default()
                    .remove(&req.hold_id);
            }
        }
    }
    for i in 0..CUSTOMERS {
        let id = customer(i);
        let bal = c.balance(&id).await?;
        let pending = credits(open_holds.get(&id).map_or(0, |h| h.len() as u64));
        let spent = committed.get(&id).copied().unwrap_or_default();
        let total_granted: u64 = bal.grants.iter().map(|g| g.granted).sum();
        assert_eq!(
            total_granted, granted[&id],
            "{id}: every grant exactly once: {bal:?}"
        );
        assert_eq!(
            bal.pending, pending,
            "{id}: every open hold exactly once: {bal:?}"
        );
        assert_eq!(
            bal.available,
            granted[&id] - spent - pending,
            "{id}: every commit exactly once: {bal:?}"
        );
    }

    // 4. The data directory passes the offline verifier: every partition (the embedded
    // store's count is read from its directory; DynamoDB's default is the server's 4).
    server.kill9();
    let verify = |more: &[&str]| {
        std::process::Command::new(tollgate_e2e::tollgate_bin()?)
            .arg("verify")
            .arg("--data-dir")
            .arg(server.data_dir())
            .args(more)
            .args(&verify_args)
            .envs(verify_env.iter().map(|(k, v)| (k, v)))
            .output()
            .map_err(anyhow::Error::from)
    };
    let out = verify(&[])?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tollgate verify failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.matches(": ok: ").count(),
        4,
        "one report per partition: {stdout}"
    );
    if verify_args.is_empty() {
        // Embedded: a count other than the recorded one is refused, not half-checked.
        let out = verify(&["--partitions", "3"])?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains("created with 4 partitions, not 3"),
            "{stderr}"
        );
    }
    Ok(())
}
