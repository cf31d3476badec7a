//! The reads every table shares: one item by key, a page of the items under a partition
//! key from a range key on, a page of some attributes of such items, and a batch of items
//! by key. With retries and read units counted.

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, ReturnConsumedCapacity};

use super::DynamoError;
use super::connection::Shared;
use super::items::{self, Item};
use super::limits::RECOVERY_PAGE_ITEMS;
use super::retry::AttemptError;

/// The item with this key (`(attribute, value)` pairs), if any.
pub(crate) async fn get_item(
    shared: &Shared,
    table: &str,
    key: &[(&str, AttributeValue)],
) -> Result<Option<Item>, DynamoError> {
    shared
        .retried("GetItem", || {
            let mut request = shared
                .client
                .get_item()
                .table_name(table)
                .consistent_read(true);
            for (name, value) in key {
                request = request.key(*name, value.clone());
            }
            let request = request.return_consumed_capacity(ReturnConsumedCapacity::Total);
            async move {
                let out = request
                    .send()
                    .await
                    .map_err(|e| AttemptError::from_sdk("GetItem", &e))?;
                let units = out.consumed_capacity().and_then(|c| c.capacity_units());
                shared.stats.consumed(None, units);
                Ok(out.item().cloned())
            }
        })
        .await
}

/// One page (at most `RECOVERY_PAGE_ITEMS`) of the items whose hash key is `pk_value` and
/// whose numeric range key is at least `from`, in range order, and whether more follow.
pub(crate) async fn query_from(
    shared: &Shared,
    table: &str,
    pk_name: &str,
    range_name: &str,
    pk_value: &str,
    from: u64,
) -> Result<(Vec<Item>, bool), DynamoError> {
    query_page(
        shared,
        table,
        (pk_name, range_name),
        pk_value,
        from,
        RECOVERY_PAGE_ITEMS,
    )
    .await
}

/// As `query_from`, at most `limit` items.
pub(crate) async fn query_page(
    shared: &Shared,
    table: &str,
    keys: (&str, &str),
    pk_value: &str,
    from: u64,
    limit: i32,
) -> Result<(Vec<Item>, bool), DynamoError> {
    let range = Range {
        from,
        last: u64::MAX,
        limit,
    };
    query(shared, table, keys, pk_value, range, None).await
}

/// The range keys and `attributes` of the items under `pk_value` whose range keys run from
/// `from` through `last`, at most `limit` of them, and whether more follow: what a sweep
/// needs to know which items to delete, without their bodies crossing the network.
/// Eventually consistent (half the read units; DynamoDB charges by the items' whole size
/// all the same): what it looks for changes only by the sweep's own deletes.
pub(crate) async fn query_attributes(
    shared: &Shared,
    table: &str,
    keys: (&str, &str),
    pk_value: &str,
    (from, last): (u64, u64),
    attributes: &[&str],
    limit: i32,
) -> Result<(Vec<Item>, bool), DynamoError> {
    let range = Range { from, last, limit };
    query(shared, table, keys, pk_value, range, Some(attributes)).await
}

/// Which range keys a `Query` asks for, and how many items at most.
struct Range {
    from: u64,
    last: u64,
    limit: i32,
}

/// One `Query` page under `pk_value`, retried on transient errors, its read units counted:
/// whole items by consistent read, or with `projection` only the range key and those
/// attributes, eventually consistent.
async fn query(
    shared: &Shared,
    table: &str,
    (pk_name, range_name): (&str, &str),
    pk_value: &str,
    range: Range,
    projection: Option<&[&str]>,
) -> Result<(Vec<Item>, bool), DynamoError> {
    // The projection expression, and the placeholder (`#a0`, ...) of each attribute in it.
    let projected: Option<(String, Vec<(String, &str)>)> = projection.map(|attributes| {
        let names: Vec<(String, &str)> = attributes
            .iter()
            .enumerate()
            .map(|(i, attribute)| (format!("#a{i}"), *attribute))
            .collect();
        let expression = std::iter::once("#range")
            .chain(names.iter().map(|(name, _)| name.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        (expression, names)
    });
    shared
        .retried("Query", || {
            let mut request = shared
                .client
                .query()
                .table_name(table)
                .key_condition_expression("#pk = :pk AND #range BETWEEN :from AND :last")
                .expression_attribute_names("#pk", pk_name)
                .expression_attribute_names("#range", range_name)
                .expression_attribute_values(":pk", items::s(pk_value))
                .expression_attribute_values(":from", items::n(range.from))
                .expression_attribute_values(":last", items::n(range.last))
                .consistent_read(projection.is_none())
                .limit(range.limit)
                .return_consumed_capacity(ReturnConsumedCapacity::Total);
            if let Some((expression, names)) = &projected {
                request = request.projection_expression(expression);
                for (name, attribute) in names {
                    request = request.expression_attribute_names(name, *attribute);
                }
            }
            async move {
                let out = request
                    .send()
                    .await
                    .map_err(|e| AttemptError::from_sdk("Query", &e))?;
                let units = out.consumed_capacity().and_then(|c| c.capacity_units());
                shared.stats.consumed(None, units);
                Ok((out.items().to_vec(), out.last_evaluated_key().is_some()))
            }
        })
        .await
}

/// One `BatchGetItem` of `keys` (at most 100) from `table`, consistent reads, retried on
/// transient errors: the items found, and the keys DynamoDB left unprocessed (it does
/// when it throttles) for the caller to ask again.
pub(crate) async fn batch_get(
    shared: &Shared,
    table: &str,
    keys: Vec<Item>,
) -> Result<(Vec<Item>, Vec<Item>), DynamoError> {
    let wanted = KeysAndAttributes::builder()
        .set_keys(Some(keys))
        .consistent_read(true)
        .build()
        .map_err(|e| DynamoError::Config {
            field: "BatchGetItem keys",
            reason: e.to_string(),
        })?;
    shared
        .retried("BatchGetItem", || {
            let request = shared
                .client
                .batch_get_item()
                .request_items(table, wanted.clone())
                .return_consumed_capacity(ReturnConsumedCapacity::Total);
            async move {
                let out = request
                    .send()
                    .await
                    .map_err(|e| AttemptError::from_sdk("BatchGetItem", &e))?;
                let units: f64 = out
                    .consumed_capacity()
                    .iter()
                    .filter_map(|c| c.capacity_units())
                    .sum();
                shared.stats.consumed(None, Some(units));
                let found = out
                    .responses()
                    .and_then(|r| r.get(table))
                    .cloned()
                    .unwrap_or_default();
                let unprocessed = out
                    .unprocessed_keys()
                    .and_then(|u| u.get(table))
                    .map(|k| k.keys().to_vec())
                    .unwrap_or_default();
                Ok((found, unprocessed))
            }
        })
        .await
}
