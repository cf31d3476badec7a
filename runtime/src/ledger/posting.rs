//! Applying legs to balances: checked, all or nothing.

use super::account::{Account, AccountKind, Balances};
use super::entry::{Leg, LegKind};
use super::error::LedgerError;
use super::rows::Rows;

/// Applies legs to their accounts in order, all or nothing: at the first leg that would
/// overflow, every change already made is undone and that leg's error returned, so the
/// accounts are as they were. Applied in place rather than staged on copies: a command's
/// legs touch two or three accounts and almost never fail. Asserts the no-overdraft
/// invariant of every grant account the legs touch: the ledger plans splits so that it
/// holds, a violation is a bug.
pub(crate) fn post_legs<'a, I>(accounts: &mut Rows<Account>, legs: I) -> Result<(), LedgerError>
where
    I: Iterator<Item = &'a Leg> + Clone,
{
    for (applied, leg) in legs.clone().enumerate() {
        let failed = match apply_leg_debit(&mut accounts[leg.debit.0 as usize].balances, leg) {
            Err(e) => Some(e),
            Ok(()) => apply_leg_credit(&mut accounts[leg.credit.0 as usize].balances, leg)
                .err()
                .inspect(|_| undo_leg_debit(&mut accounts[leg.debit.0 as usize].balances, leg)),
        };
        if let Some(e) = failed {
            for leg in legs.take(applied) {
                undo_leg_debit(&mut accounts[leg.debit.0 as usize].balances, leg);
                undo_leg_credit(&mut accounts[leg.credit.0 as usize].balances, leg);
            }
            return Err(e);
        }
    }
    for leg in legs {
        for id in [leg.debit, leg.credit] {
            let account = &accounts[id.0 as usize];
            if matches!(account.kind, AccountKind::Grant(_)) {
                let b = &account.balances;
                assert!(
                    u128::from(b.debits_posted) + u128::from(b.debits_pending)
                        <= u128::from(b.credits_posted),
                    "grant account {} would overdraw: {b:?}",
                    id.0
                );
            }
        }
    }
    Ok(())
}

/// Takes back a debit applied by `apply_leg_debit`. Wrapping arithmetic is exact here:
/// undoing every applied leg, in any order, returns each total to its earlier value.
fn undo_leg_debit(b: &mut Balances, leg: &Leg) {
    match leg.kind {
        LegKind::Post => b.debits_posted = b.debits_posted.wrapping_sub(leg.amount),
        LegKind::Hold => b.debits_pending = b.debits_pending.wrapping_sub(leg.amount),
        LegKind::Unhold => b.debits_pending = b.debits_pending.wrapping_add(leg.amount),
    }
}

/// Takes back a credit applied by `apply_leg_credit` (see `undo_leg_debit`).
fn undo_leg_credit(b: &mut Balances, leg: &Leg) {
    match leg.kind {
        LegKind::Post => b.credits_posted = b.credits_posted.wrapping_sub(leg.amount),
        LegKind::Hold => b.credits_pending = b.credits_pending.wrapping_sub(leg.amount),
        LegKind::Unhold => b.credits_pending = b.credits_pending.wrapping_add(leg.amount),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{AccountId, GrantId};

    fn account(id: u32, kind: AccountKind, balances: Balances) -> Account {
        Account {
            id: AccountId(id),
            wallet: 0,
            kind,
            balances,
        }
    }

    fn leg(debit: u32, credit: u32, amount: u64, kind: LegKind) -> Leg {
        Leg {
            debit: AccountId(debit),
            credit: AccountId(credit),
            amount,
            kind,
        }
    }

    /// A leg that overflows, on its debit or on its credit side, leaves every account as
    /// it was, however many legs before it were applied; legs that fit all apply.
    #[test]
    fn a_failing_leg_undoes_every_earlier_leg() {
        let accounts = vec![
            account(
                0,
                AccountKind::Grant(GrantId(1)),
                Balances {
                    credits_posted: 1_000,
                    ..Balances::default()
                },
            ),
            account(
                1,
                AccountKind::RecognizedRevenue,
                Balances {
                    credits_posted: u64::MAX - 10,
                    ..Balances::default()
                },
            ),
            account(2, AccountKind::Overdraft, Balances::default()),
        ];
        let failing: [&[Leg]; 4] = [
            // Credit side overflows after three legs that fit.
            &[
                leg(0, 1, 100, LegKind::Hold),
                leg(0, 1, 100, LegKind::Unhold),
                leg(0, 1, 5, LegKind::Post),
                leg(0, 1, 6, LegKind::Post),
            ],
            // Debit side underflows after a leg on the same account.
            &[leg(0, 2, 7, LegKind::Hold), leg(0, 2, 8, LegKind::Unhold)],
            // The first leg fails.
            &[leg(2, 0, 1, LegKind::Unhold)],
            &[leg(2, 1, 11, LegKind::Post), leg(0, 2, 1, LegKind::Post)],
        ];
        for legs in failing {
            let mut after: Rows<Account> = accounts.iter().cloned().collect();
            assert!(post_legs(&mut after, legs.iter()).is_err(), "{legs:?}");
            for (a, b) in after.iter().zip(&accounts) {
                assert_eq!(a.balances, b.balances, "{legs:?}");
            }
        }
        let mut after: Rows<Account> = accounts.iter().cloned().collect();
        let legs = [
            leg(0, 1, 10, LegKind::Hold),
            leg(0, 1, 10, LegKind::Unhold),
            leg(0, 1, 10, LegKind::Post),
        ];
        post_legs(&mut after, legs.iter()).unwrap();
        assert_eq!(after[0].balances.debits_posted, 10);
        assert_eq!(after[0].balances.debits_pending, 0);
        assert_eq!(after[1].balances.credits_posted, u64::MAX);
    }

    /// A grant account driven below zero is a bug in the ledger's planning: a panic.
    #[test]
    #[should_panic(expected = "would overdraw")]
    fn overdrawing_a_grant_account_panics() {
        let mut accounts: Rows<Account> = [
            account(0, AccountKind::Grant(GrantId(1)), Balances::default()),
            account(1, AccountKind::RecognizedRevenue, Balances::default()),
        ]
        .into_iter()
        .collect();
        let _ = post_legs(&mut accounts, [leg(0, 1, 1, LegKind::Post)].iter());
    }
}
