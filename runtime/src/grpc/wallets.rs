//! `tollgate.v1.Wallets`.

use std::sync::Arc;
use std::time::Instant;

use tonic::{Request, Response, Status};

use super::convert::{from_ms, ms, status};
use super::proto::{self, wallets_server::Wallets};
use crate::http::Metrics;
use crate::ledger::{Category, EntryKind, LegKind};
use crate::service::Runtime;

pub(crate) struct WalletsService {
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) metrics: Arc<Metrics>,
}

#[tonic::async_trait]
impl Wallets for WalletsService {
    async fn grant(
        &self,
        request: Request<proto::GrantRequest>,
    ) -> Result<Response<proto::GrantResponse>, Status> {
        let started = Instant::now();
        let r = request.into_inner();
        let category = match proto::GrantCategory::try_from(r.category) {
            Ok(proto::GrantCategory::Paid) => Category::Paid,
            Ok(proto::GrantCategory::Promotional) => Category::Promotional,
            _ => {
                return Err(Status::invalid_argument(
                    "invalid category: must be PAID or PROMOTIONAL",
                ));
            }
        };
        if r.amount_micro_credits == 0 {
            return Err(Status::invalid_argument(
                "invalid amount_micro_credits: must be at least 1",
            ));
        }
        let effective = from_ms("effective_at_ms", r.effective_at_ms)?;
        let expires = from_ms("expires_at_ms", r.expires_at_ms)?;
        let result = self
            .runtime
            .grant(
                &r.customer_id,
                r.amount_micro_credits,
                category,
                r.priority,
                effective,
                expires,
                r.cost_basis_micros,
                &r.idempotency_key,
            )
            .await;
        self.metrics.observe_call("grant", started, result.is_ok());
        let (grant_id, entry_id, repaid) = result.map_err(status)?;
        Ok(Response::new(proto::GrantResponse {
            grant_id,
            entry_id,
            repaid_overdraft_micro_credits: repaid,
        }))
    }

    async fn get_balance(
        &self,
        request: Request<proto::GetBalanceRequest>,
    ) -> Result<Response<proto::GetBalanceResponse>, Status> {
        let started = Instant::now();
        let r = request.into_inner();
        let result = self.runtime.balance(&r.customer_id).await;
        self.metrics
            .observe_call("get_balance", started, result.is_ok());
        let b = result.map_err(status)?;
        Ok(Response::new(proto::GetBalanceResponse {
            available: b.available,
            pending: b.pending,
            upcoming: b.upcoming,
            overdraft: b.overdraft,
            grants: b
                .grants
                .into_iter()
                .map(|g| proto::GrantBalance {
                    grant_id: g.grant.0,
                    category: match g.category {
                        Category::Paid => proto::GrantCategory::Paid,
                        Category::Promotional => proto::GrantCategory::Promotional,
                    } as i32,
                    priority: g.priority,
                    effective_at_ms: ms(g.effective_at.0),
                    expires_at_ms: g.expires_at.map_or(0, |t| ms(t.0)),
                    granted: g.granted,
                    used: g.used,
                    pending: g.pending,
                    available: g.available,
                    expired: g.expired,
                })
                .collect(),
        }))
    }

    async fn list_entries(
        &self,
        request: Request<proto::ListEntriesRequest>,
    ) -> Result<Response<proto::ListEntriesResponse>, Status> {
        let started = Instant::now();
        let r = request.into_inner();
        let after = if r.page_token.is_empty() {
            0
        } else {
            r.page_token.parse::<u64>().map_err(|_| {
                Status::invalid_argument(format!(
                    "invalid page_token: {:?} is not from a previous page",
                    r.page_token
                ))
            })?
        };
        let result = self
            .runtime
            .entries(&r.customer_id, after, r.page_size as usize)
            .await;
        self.metrics
            .observe_call("list_entries", started, result.is_ok());
        let (entries, names) = result.map_err(status)?;
        let page_size = if r.page_size == 0 {
            100
        } else {
            r.page_size as usize
        };
        let next_page_token = match entries.last() {
            Some(last) if entries.len() >= page_size.min(crate::service::MAX_PAGE_SIZE) => {
                last.id.0.to_string()
            }
            _ => String::new(),
        };
        let name = |id: crate::ledger::AccountId| names.get(&id.0).cloned().unwrap_or_default();
        let entries = entries
            .into_iter()
            .map(|e| proto::JournalEntry {
                id: e.id.0,
                time_ms: ms(e.time.0),
                kind: e.kind.name().to_string(),
                subject_id: match e.kind {
                    EntryKind::Grant { grant } | EntryKind::Expire { grant } => grant.0,
                    EntryKind::Hold { hold }
                    | EntryKind::Commit { hold }
                    | EntryKind::Release { hold }
                    | EntryKind::HoldTimeout { hold }
                    | EntryKind::Overage { hold } => hold.0,
                    EntryKind::Debit | EntryKind::Usage => 0,
                },
                legs: e
                    .legs
                    .iter()
                    .map(|l| proto::Leg {
                        debit: name(l.debit),
                        credit: name(l.credit),
                        amount: l.amount,
                        kind: match l.kind {
                            LegKind::Post => "post",
                            LegKind::Hold => "hold",
                            LegKind::Unhold => "unhold",
                        }
                        .to_string(),
                    })
                    .collect(),
                hash: blake3_hex::encode(e.hash),
            })
            .collect();
        Ok(Response::new(proto::ListEntriesResponse {
            entries,
            next_page_token,
        }))
    }
}
