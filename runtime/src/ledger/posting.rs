//! Applying legs to balances: checked, all or nothing.

use smallvec::SmallVec;

use super::account::{Account, AccountKind, Balances};
use super::entry::{Leg, LegKind};
use super::error::LedgerError;
use super::types::AccountId;

/// New balances of every account a set of legs touches, computed without changing
/// anything. Either every leg applies or none does.
pub(crate) struct Staged {
    touched: SmallVec<[(AccountId, Balances); 6]>,
}

impl Staged {
    pub(crate) fn new() -> Self {
        Staged {
            touched: SmallVec::new(),
        }
    }

    fn slot(&mut self, accounts: &[Account], id: AccountId) -> &mut Balances {
        let index = match self.touched.iter().position(|(a, _)| *a == id) {
            Some(i) => i,
            None => {
                self.touched.push((id, accounts[id.0 as usize].balances));
                self.touched.len() - 1
            }
        };
        &mut self.touched[index].1
    }

    /// Stages one leg on top of what is already staged.
    pub(crate) fn stage(&mut self, accounts: &[Account], leg: &Leg) -> Result<(), LedgerError> {
        apply_leg_debit(self.slot(accounts, leg.debit), leg)?;
        apply_leg_credit(self.slot(accounts, leg.credit), leg)?;
        Ok(())
    }

    /// Writes the staged balances. Asserts the no-overdraft invariant of every grant
    /// account: the ledger plans splits so that it holds, a violation is a bug.
    pub(crate) fn commit(self, accounts: &mut [Account]) {
        for (id, balances) in self.touched {
            let account = &mut accounts[id.0 as usize];
            if matches!(account.kind, AccountKind::Grant(_)) {
                assert!(
                    u128::from(balances.debits_posted) + u128::from(balances.debits_pending)
                        <= u128::from(balances.credits_posted),
                    "grant account {} would overdraw: {balances:?}",
                    id.0
                );
            }
            account.balances = balances;
        }
    }
}

pub(crate) fn apply_leg_debit(b: &mut Balances, leg: &Leg) -> Result<(), LedgerError> {
    match leg.kind {
        LegKind::Post => {
            b.debits_posted = b
                .debits_posted
                .checked_add(leg.amount)
                .ok_or_else(|| LedgerError::overflow("debits posted"))?
        }
        LegKind::Hold => {
            b.debits_pending = b
                .debits_pending
                .checked_add(leg.amount)
                .ok_or_else(|| LedgerError::overflow("debits pending"))?
        }
        LegKind::Unhold => {
            b.debits_pending = b
                .debits_pending
                .checked_sub(leg.amount)
                .ok_or_else(|| LedgerError::overflow("debits pending (underflow)"))?
        }
    }
    Ok(())
}

pub(crate) fn apply_leg_credit(b: &mut Balances, leg: &Leg) -> Result<(), LedgerError> {
    match leg.kind {
        LegKind::Post => {
            b.credits_posted = b
                .credits_posted
                .checked_add(leg.amount)
                .ok_or_else(|| LedgerError::overflow("credits posted"))?
        }
        LegKind::Hold => {
            b.credits_pending = b
                .credits_pending
                .checked_add(leg.amount)
                .ok_or_else(|| LedgerError::overflow("credits pending"))?
        }
        LegKind::Unhold => {
            b.credits_pending = b
                .credits_pending
                .checked_sub(leg.amount)
                .ok_or_else(|| LedgerError::overflow("credits pending (underflow)"))?
        }
    }
    Ok(())
}
