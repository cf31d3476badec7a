//! The commands' effects: grant, reserve, commit, release, debit, and the sweeps that
//! time out holds and expire grants.

use smallvec::SmallVec;

use super::command::{CommandResult, Outcome};
use super::entry::{EntryKind, Leg, LegKind, Legs};
use super::error::{HoldResolution, LedgerError};
use super::state::{Grant, Hold, HoldState, HoldTerms, Ledger, MAX_HOLD_TIMEOUT_MS};
use super::types::{
    Category, GrantId, GrantSpec, HoldId, LimitCharge, OveragePolicy, Price, WalletRef,
};

/// How an amount is split across a wallet's grants.
pub(crate) type Split = SmallVec<[(GrantId, u64); 2]>;

fn post_leg(debit: super::types::AccountId, credit: super::types::AccountId, amount: u64) -> Leg {
    Leg {
        debit,
        credit,
        amount,
        kind: LegKind::Post,
    }
}

impl Ledger {
    pub(crate) fn grant(&mut self, wallet: &WalletRef, spec: &GrantSpec) -> CommandResult {
        if spec.amount == 0 {
            return Err(LedgerError::invalid(
                "grant.amount",
                0,
                "must be at least 1",
            ));
        }
        if let Some(expires_at) = spec.expires_at {
            if expires_at <= spec.effective_at {
                return Err(LedgerError::invalid(
                    "grant.expires_at",
                    expires_at.0,
                    "must be after effective_at",
                ));
            }
            if expires_at <= self.time {
                return Err(LedgerError::invalid(
                    "grant.expires_at",
                    expires_at.0,
                    "must be after the current ledger time",
                ));
            }
        }
        if spec.category == Category::Promotional && spec.cost_basis_micros != 0 {
            return Err(LedgerError::invalid(
                "grant.cost_basis_micros",
                spec.cost_basis_micros,
                "must be 0 for a promotional grant",
            ));
        }
        // Refuse an overflowing issue before anything is created (see `lifetime_credits`).
        if let Some(&index) = self.wallet_index.get(wallet)
            && self
                .lifetime_credits(index)
                .checked_add(spec.amount)
                .is_none()
        {
            return Err(LedgerError::overflow("credits issued to the wallet"));
        }

        let index = self.open_wallet(wallet, None);
        let id = GrantId(self.grants.len() as u64 + 1);
        let account = self.new_account(index, super::account::AccountKind::Grant(id));
        let grant = Grant {
            id,
            wallet: index,
            account,
            spec: spec.clone(),
            expired: false,
        };
        let key = grant.consumption_key();
        let accounts = self.wallets[index as usize].accounts;
        let source = match spec.category {
            Category::Paid => accounts.deferred_revenue,
            Category::Promotional => accounts.promotional_expense,
        };
        let mut legs: Legs = SmallVec::new();
        legs.push(post_leg(source, account, spec.amount));
        let mut repaid = 0;
        if spec.effective_at <= self.time {
            let owed = self.accounts[accounts.overdraft.0 as usize]
                .balances
                .debit_balance();
            repaid = owed.min(spec.amount);
            if repaid > 0 {
                legs.push(post_leg(account, accounts.overdraft, repaid));
            }
        }
        self.grants.push(grant);
        let entries = match self.post(index, &mut [(EntryKind::Grant { grant: id }, legs)]) {
            Ok(ids) => ids,
            // The issue was checked above and the repayment only lowers a balance.
            Err(e) => panic!("grant {} failed after its checks: {e}", id.0),
        };
        let live = &mut self.wallets[index as usize].live_grants;
        let grants = &self.grants;
        let at = live.partition_point(|g| grants[(g.0 - 1) as usize].consumption_key() < key);
        live.insert(at, id);
        self.wallets[index as usize].grants.push(id);
        if let Some(expires_at) = spec.expires_at {
            self.grant_expiries.insert((expires_at, id));
        }
        Ok(Outcome::Granted {
            grant: id,
            entry: entries[0],
            repaid_overdraft: repaid,
        })
    }

    pub(crate) fn reserve(
        &mut self,
        wallet: &WalletRef,
        amount: u64,
        timeout_ms: u64,
        limits: &[LimitCharge],
        price: Option<Price>,
    ) -> CommandResult {
        super::counters::validate(limits)?;
        if price.is_some_and(|p| p.per_units == 0) {
            return Err(LedgerError::invalid(
                "price.per_units",
                0,
                "must be at least 1",
            ));
        }
        if amount == 0 && limits.is_empty() {
            return Err(LedgerError::invalid("amount", 0, "must be at least 1"));
        }
        if timeout_ms == 0 || timeout_ms > MAX_HOLD_TIMEOUT_MS {
            return Err(LedgerError::invalid(
                "timeout_ms",
                timeout_ms,
                "must be between 1 and 86400000 (24 h)",
            ));
        }
        let index = self.wallet(wallet)?;
        self.check_limits(limits)?;
        let split = self.split(index, amount);
        let taken: u64 = split.iter().map(|(_, a)| a).sum();
        if taken < amount {
            return Err(LedgerError::InsufficientCredits {
                wallet: wallet.clone(),
                needed: amount,
                available: taken,
            });
        }
        let expires_at = self
            .time
            .checked_add_ms(timeout_ms)
            .ok_or_else(|| LedgerError::overflow("hold expiry time"))?;
        let id = HoldId(self.holds.next_number());
        let legs: Legs = split
            .iter()
            .map(|&(g, a)| {
                let grant = self.grant_ref(g);
                Leg {
                    debit: grant.account,
                    credit: self.consumption_sink(grant),
                    amount: a,
                    kind: LegKind::Hold,
                }
            })
            .collect();
        let entries = self.post(index, &mut [(EntryKind::Hold { hold: id }, legs)])?;
        let held_limits = self.hold_limits(limits);
        let number = self.holds.push(Hold {
            id,
            wallet: index,
            amount,
            expires_at,
            state: HoldState::Open,
            terms: Some(Box::new(HoldTerms {
                parts: split,
                limits: held_limits,
                price,
            })),
        });
        assert_eq!(number, id.0, "hold ids are consecutive");
        self.hold_timeouts.insert((expires_at, id));
        let limits_after = limits
            .iter()
            .map(|l| {
                self.counter(&l.counter, l.window.start)
                    .map_or((0, 0), |c| (c.used, c.pending))
            })
            .collect();
        Ok(Outcome::Reserved {
            hold: id,
            entry: entries[0],
            expires_at,
            available_after: self.available(index),
            limits_after,
        })
    }

    pub(crate) fn commit(
        &mut self,
        customer: &str,
        hold_id: HoldId,
        amount: u64,
        units: u64,
    ) -> CommandResult {
        // Read in place, not cloned: what is needed after posting is copied out first.
        let hold = self.open_hold(customer, hold_id)?;
        let (wallet, held) = (hold.wallet, hold.amount);
        let amount = match hold.price() {
            None => amount,
            Some(_) if amount != 0 => {
                return Err(LedgerError::invalid(
                    "amount",
                    amount,
                    "must be 0 for a priced hold (give units)",
                ));
            }
            Some(price) => price
                .cost(units)
                .ok_or_else(|| LedgerError::overflow("price of the units"))?,
        };
        let posted = amount.min(held);
        let mut legs = self.unhold_legs(hold, posted);
        let overage = amount - posted;
        let mut entries: SmallVec<[(EntryKind, Legs); 2]> = SmallVec::new();
        let overage_posted = if overage > 0 {
            let (overage_legs, charged) = self.charge_legs(wallet, overage);
            if charged > 0 {
                entries.push((
                    EntryKind::Commit { hold: hold_id },
                    std::mem::take(&mut legs),
                ));
                entries.push((EntryKind::Overage { hold: hold_id }, overage_legs));
            }
            charged
        } else {
            0
        };
        if entries.is_empty() {
            entries.push((EntryKind::Commit { hold: hold_id }, legs));
        }
        let ids = self.post(wallet, &mut entries)?;
        self.resolve_hold(
            hold_id,
            HoldResolution::Committed,
            posted + overage_posted,
            units,
        );
        Ok(Outcome::Committed {
            entry: ids[0],
            posted,
            released: held - posted,
            overage_posted,
            overage_unbilled: overage - overage_posted,
        })
    }

    pub(crate) fn release(&mut self, customer: &str, hold_id: HoldId) -> CommandResult {
        let hold = self.open_hold(customer, hold_id)?;
        let (wallet, held) = (hold.wallet, hold.amount);
        let legs = self.unhold_legs(hold, 0);
        let ids = self.post(wallet, &mut [(EntryKind::Release { hold: hold_id }, legs)])?;
        self.resolve_hold(hold_id, HoldResolution::Released, 0, 0);
        Ok(Outcome::Released {
            entry: ids[0],
            released: held,
        })
    }

    pub(crate) fn debit(&mut self, wallet: &WalletRef, amount: u64) -> CommandResult {
        if amount == 0 {
            return Err(LedgerError::invalid("amount", 0, "must be at least 1"));
        }
        let index = self.wallet(wallet)?;
        let (legs, charged) = self.charge_legs(index, amount);
        if charged < amount {
            return Err(LedgerError::InsufficientCredits {
                wallet: wallet.clone(),
                needed: amount,
                available: charged,
            });
        }
        let ids = self.post(index, &mut [(EntryKind::Debit, legs)])?;
        Ok(Outcome::Debited {
            entry: ids[0],
            available_after: self.available(index),
        })
    }

    /// Resolves an open hold as timed out (called by `advance` at the hold's due time).
    pub(crate) fn time_out_hold(&mut self, hold_id: HoldId) {
        // Read in place, not cloned, as `commit` and `release` do.
        let Some(hold) = self.holds.get(hold_id.0) else {
            panic!(
                "hold {} is in the timeout index but not in the hold table",
                hold_id.0
            );
        };
        let (wallet, legs) = (hold.wallet, self.unhold_legs(hold, 0));
        if let Err(e) = self.post(
            wallet,
            &mut [(EntryKind::HoldTimeout { hold: hold_id }, legs)],
        ) {
            // Unhold legs only lower pending totals; expiry legs are bounded by the grant.
            panic!("timeout of hold {} failed: {e}", hold_id.0);
        }
        self.resolve_hold(hold_id, HoldResolution::TimedOut, 0, 0);
    }

    /// Expires a grant at its due time: what is free goes to breakage (paid) or back to
    /// promotional expense (promotional). Credits held at that moment stay with their
    /// holds; whatever of them is later released expires in the resolving entry.
    pub(crate) fn expire_grant(&mut self, grant_id: GrantId) {
        let grant = self.grant_ref(grant_id).clone();
        let expires_at = grant.spec.expires_at.unwrap_or_else(|| {
            panic!(
                "grant {} is in the expiry index without an expiry",
                grant_id.0
            )
        });
        self.grant_expiries.remove(&(expires_at, grant_id));
        self.grant_mut(grant_id).expired = true;
        self.wallets[grant.wallet as usize]
            .live_grants
            .retain(|g| *g != grant_id);
        let free = self.accounts[grant.account.0 as usize].balances.free();
        if free > 0 {
            let legs: Legs =
                smallvec::smallvec![post_leg(grant.account, self.expiry_sink(&grant), free)];
            if let Err(e) = self.post(
                grant.wallet,
                &mut [(EntryKind::Expire { grant: grant_id }, legs)],
            ) {
                panic!("expiry of grant {} failed: {e}", grant_id.0);
            }
        }
    }

    /// Legs that give back every part of a hold, posting the first `posted` credits in
    /// consumption order. Released credits of a grant that has expired meanwhile go
    /// straight to its expiry account.
    fn unhold_legs(&self, hold: &Hold, posted: u64) -> Legs {
        let mut legs = Legs::new();
        let mut to_post = posted;
        for &(grant_id, held) in hold.parts() {
            let grant = self.grant_ref(grant_id);
            let sink = self.consumption_sink(grant);
            legs.push(Leg {
                debit: grant.account,
                credit: sink,
                amount: held,
                kind: LegKind::Unhold,
            });
            let post = held.min(to_post);
            to_post -= post;
            if post > 0 {
                legs.push(post_leg(grant.account, sink, post));
            }
            let released = held - post;
            if released > 0 && grant.expired {
                legs.push(post_leg(grant.account, self.expiry_sink(grant), released));
            }
        }
        legs
    }

    /// Legs that consume up to `amount` credits now: from live grants in consumption
    /// order, then from the overdraft the wallet's policy allows. Returns how much the
    /// legs charge.
    pub(crate) fn charge_legs(&self, wallet: u32, amount: u64) -> (Legs, u64) {
        let split = self.split(wallet, amount);
        let mut legs: Legs = split
            .iter()
            .map(|&(g, a)| {
                let grant = self.grant_ref(g);
                post_leg(grant.account, self.consumption_sink(grant), a)
            })
            .collect();
        let mut charged: u64 = split.iter().map(|(_, a)| a).sum();
        let w = &self.wallets[wallet as usize];
        if let OveragePolicy::AllowOverdraft { floor } = w.overage {
            let used = self.accounts[w.accounts.overdraft.0 as usize]
                .balances
                .debit_balance();
            let room = floor
                .saturating_sub(used)
                .min(u64::MAX - self.lifetime_credits(wallet));
            let from_overdraft = (amount - charged).min(room);
            if from_overdraft > 0 {
                legs.push(post_leg(
                    w.accounts.overdraft,
                    w.accounts.recognized_revenue,
                    from_overdraft,
                ));
                charged += from_overdraft;
            }
        }
        (legs, charged)
    }

    /// Splits up to `amount` across the wallet's usable grants in consumption order.
    pub(crate) fn split(&self, wallet: u32, amount: u64) -> Split {
        let mut split = Split::new();
        let mut rest = amount;
        for &g in &self.wallets[wallet as usize].live_grants {
            if rest == 0 {
                break;
            }
            let grant = self.grant_ref(g);
            if grant.spec.effective_at > self.time {
                continue;
            }
            let take = self.accounts[grant.account.0 as usize]
                .balances
                .free()
                .min(rest);
            if take > 0 {
                split.push((g, take));
                rest -= take;
            }
        }
        split
    }

    /// Every credit that ever entered the wallet: paid and promotional grants plus
    /// overdraft drawn. Kept within a u64, so no balance derived from it can overflow.
    fn lifetime_credits(&self, wallet: u32) -> u64 {
        let accounts = &self.wallets[wallet as usize].accounts;
        let total = u128::from(self.balances(accounts.deferred_revenue).debits_posted)
            + u128::from(self.balances(accounts.promotional_expense).debits_posted)
            + u128::from(self.balances(accounts.overdraft).debits_posted);
        assert!(
            total <= u128::from(u64::MAX),
            "wallet lifetime credits exceed u64"
        );
        total as u64
    }

    /// Credits the wallet can consume now (saturating at `u64::MAX`).
    pub(crate) fn available(&self, wallet: u32) -> u64 {
        let total: u128 = self.wallets[wallet as usize]
            .live_grants
            .iter()
            .map(|&g| self.grant_ref(g))
            .filter(|g| g.spec.effective_at <= self.time)
            .map(|g| u128::from(self.accounts[g.account.0 as usize].balances.free()))
            .sum();
        u64::try_from(total).unwrap_or(u64::MAX)
    }

    fn wallet(&self, wallet: &WalletRef) -> Result<u32, LedgerError> {
        self.wallet_index
            .get(wallet)
            .copied()
            .ok_or_else(|| LedgerError::UnknownWallet {
                wallet: wallet.clone(),
            })
    }

    fn open_hold(&self, customer: &str, id: HoldId) -> Result<&Hold, LedgerError> {
        let hold = self
            .holds
            .get(id.0)
            .filter(|h| self.wallets[h.wallet as usize].wallet_ref.customer == customer)
            .ok_or_else(|| LedgerError::UnknownHold {
                customer: customer.to_string(),
                hold: id,
            })?;
        match hold.state {
            HoldState::Open => Ok(hold),
            HoldState::Resolved {
                how: HoldResolution::TimedOut,
                ..
            } => Err(LedgerError::HoldTimedOut {
                hold: id,
                expired_at: hold.expires_at,
            }),
            HoldState::Resolved { how, .. } => Err(LedgerError::HoldResolved {
                hold: id,
                resolution: how,
            }),
        }
    }
}
