//! Partition leases: one item per partition holding the current owner's epoch. Taking a
//! partition over bumps the epoch with a conditional write; the journal's fence (see the
//! module docs) then makes every write of an older epoch fail.

use super::DynamoError;
use super::connection::Shared;
use super::items::{self, Item};
use super::reads;
use super::transact::{PutOutcome, put_item_if, put_item_if_absent};

/// Most rounds of read-then-bump when other starters race us for the same partition.
/// Each round loses only to a concurrent takeover, so more than a few means a loop of
/// restarts that this one should not join.
pub const MAX_TAKEOVER_ROUNDS: u32 = 8;

/// The lease of a partition as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub epoch: u64,
    pub owner: String,
    pub incarnation: String,
}

fn table(shared: &Shared) -> (String, String) {
    let leases = &shared.schema.tables.leases;
    (shared.schema.name(leases), leases.hash_key.name.clone())
}

fn parse(item: &Item) -> Result<Lease, String> {
    Ok(Lease {
        epoch: items::get_u64(item, items::EPOCH)?,
        owner: items::get_str(item, items::OWNER)?.to_string(),
        incarnation: items::get_str(item, items::INCARNATION)
            .unwrap_or_default()
            .to_string(),
    })
}

/// Reads the current lease (consistent read).
pub(crate) async fn current(
    shared: &Shared,
    partition: &str,
) -> Result<Option<Lease>, DynamoError> {
    let (table, pk) = table(shared);
    let item = reads::get_item(shared, &table, &[(pk.as_str(), items::s(partition))]).await?;
    item.map(|i| {
        parse(&i).map_err(|reason| DynamoError::Corrupt {
            partition: partition.to_string(),
            what: "lease",
            at: 0,
            reason,
        })
    })
    .transpose()
}

/// Takes the partition over for `owner`: the epoch becomes one more than the current one.
/// `incarnation` is unique to this attempt, so a retried write that had landed is
/// recognised as ours. With `only_from`, only a lease at that epoch, or one this
/// connection wrote (a takeover whose answer was lost), is taken over: any other means
/// someone took the partition since, and the answer is `Fenced`.
pub(crate) async fn take_over(
    shared: &Shared,
    partition: &str,
    owner: &str,
    incarnation: &str,
    now_ms: u64,
    only_from: Option<u64>,
) -> Result<u64, DynamoError> {
    let (table, pk) = table(shared);
    for _ in 0..MAX_TAKEOVER_ROUNDS {
        let previous = current(shared, partition).await?;
        if let Some(lease) = previous.as_ref().filter(|l| l.incarnation == incarnation) {
            return Ok(lease.epoch); // an earlier round landed after all
        }
        if let Some(ours) = only_from
            && !previous
                .as_ref()
                .is_some_and(|l| l.epoch == ours || shared.is_ours(&l.incarnation))
        {
            tracing::warn!(
                partition,
                owner,
                epoch = ours,
                "the partition was taken over since this process held it; not taking it back"
            );
            return Err(DynamoError::Fenced {
                partition: partition.to_string(),
                epoch: ours,
                current_epoch: previous.as_ref().map_or(0, |l| l.epoch),
                current_owner: previous.map_or_else(String::new, |l| l.owner),
            });
        }
        let epoch = previous.as_ref().map_or(0, |l| l.epoch) + 1;
        let mut item = Item::new();
        item.insert(pk.clone(), items::s(partition));
        item.insert(items::EPOCH.into(), items::n(epoch));
        item.insert(items::OWNER.into(), items::s(owner));
        item.insert(items::INCARNATION.into(), items::s(incarnation));
        item.insert(items::ACQUIRED_AT_MS.into(), items::n(now_ms));
        let outcome = match &previous {
            None => put_item_if_absent(shared, &table, &pk, &item).await?,
            Some(lease) => {
                let names = [("#pk", pk.as_str()), ("#epoch", items::EPOCH)];
                let values = [(":previous", items::n(lease.epoch))];
                let condition = "attribute_exists(#pk) AND #epoch = :previous";
                put_item_if(shared, &table, &item, condition, &names, &values).await?
            }
        };
        let won = match outcome {
            PutOutcome::Stored => true,
            // Ours, if an earlier attempt of this very write landed.
            PutOutcome::Refused(current) => current
                .and_then(|i| parse(&i).ok())
                .is_some_and(|l| l.epoch == epoch && l.incarnation == incarnation),
        };
        if won {
            tracing::info!(partition, owner, epoch, "took the partition over");
            return Ok(epoch);
        }
        // Someone else bumped the epoch between our read and write: read again.
    }
    Err(DynamoError::Unavailable {
        op: "take over partition",
        attempts: MAX_TAKEOVER_ROUNDS,
        elapsed_ms: 0,
        last: format!("other owners kept taking partition {partition} over"),
    })
}

/// The leases table's item that records how many partitions the tables were created with
/// (no partition has this name: theirs are [`partition_name`]s).
const COUNT_KEY: &str = "#partitions";
const COUNT: &str = "count";

/// The name of partition `p` in every table: `p0000`, `p0001`, ...
pub fn partition_name(p: u32) -> String {
    format!("p{p:04}")
}

/// The partition count of these tables: the one recorded, else `asked` (or `default` when
/// nothing is asked), recorded now. A count asked that differs from the recorded one is
/// refused: customers hash to partitions, so another count would look for every ledger in
/// the wrong place. Tables used before the count was recorded are checked against their
/// leases: a lease for partition `asked`, or a lease for partition 0 but none for
/// `asked - 1`, shows another count.
pub(crate) async fn partition_count(
    shared: &Shared,
    asked: Option<u32>,
    default: u32,
) -> Result<u32, DynamoError> {
    let max = crate::engine::MAX_PARTITIONS;
    if let Some(asked) = asked.filter(|n| *n == 0 || *n > max) {
        return Err(DynamoError::Config {
            field: "partitions",
            reason: format!("partitions must be between 1 and {max}, got {asked}"),
        });
    }
    let (table, pk) = table(shared);
    let key = [(pk.as_str(), items::s(COUNT_KEY))];
    let mismatch = |recorded: String, asked: u32, remedy: &str| DynamoError::Config {
        field: "partitions",
        reason: format!(
            "the tables (leases table {table}) were created with {recorded}, not {asked}: \
             customers hash to partitions, so the count is fixed ({remedy})"
        ),
    };
    const USE_RECORDED: &str = "leave --partitions out to use the recorded count";
    // Tables from before the count was recorded: nothing to fall back on.
    const GIVE_IT: &str = "pass --partitions with the count they were created with";
    let recorded = |item: &Item| {
        items::get_u64(item, COUNT)
            .ok()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| DynamoError::Corrupt {
                partition: COUNT_KEY.to_string(),
                what: "partition count",
                at: 0,
                reason: format!("{COUNT} is not a partition count"),
            })
    };
    if let Some(item) = reads::get_item(shared, &table, &key).await? {
        let count = recorded(&item)?;
        return match asked {
            Some(asked) if asked != count => {
                Err(mismatch(format!("{count} partitions"), asked, USE_RECORDED))
            }
            _ => Ok(count),
        };
    }
    let count = asked.unwrap_or(default);
    if current(shared, &partition_name(count)).await?.is_some() {
        return Err(mismatch(
            format!("more than {count} partitions"),
            count,
            GIVE_IT,
        ));
    }
    if count > 1
        && current(shared, &partition_name(0)).await?.is_some()
        && current(shared, &partition_name(count - 1)).await?.is_none()
    {
        return Err(mismatch(
            format!("fewer than {count} partitions"),
            count,
            GIVE_IT,
        ));
    }
    let mut item = Item::new();
    item.insert(pk.clone(), items::s(COUNT_KEY));
    item.insert(COUNT.into(), items::n(u64::from(count)));
    let written = put_item_if_absent(shared, &table, &pk, &item).await?;
    match written {
        PutOutcome::Stored => {
            tracing::info!(partitions = count, "recorded the tables' partition count");
            Ok(count)
        }
        // Another starter recorded a count first (or a retry of our own write landed).
        PutOutcome::Refused(existing) => {
            let existing = recorded(&existing.unwrap_or_default())?;
            if existing == count {
                Ok(count)
            } else {
                Err(mismatch(
                    format!("{existing} partitions"),
                    count,
                    USE_RECORDED,
                ))
            }
        }
    }
}
