//! Responses with many rows as small aligned tables: a balance and its grants, journal
//! entries, a customer's features. Pure: each function returns the text.

use super::amount::format_credits;
use super::time::format_time_ms;
use crate::grpc::proto::{GetBalanceResponse, GetCustomerResponse, GrantCategory, JournalEntry};
use std::fmt::Write;

/// Hex digits of an entry's chain hash shown in text (the JSON has all of it).
const SHORT_HASH_HEX_DIGITS: usize = 16;

/// The width of each column: its widest cell.
fn column_widths(rows: &[Vec<String>]) -> Vec<usize> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|row| row.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect()
}

/// One row padded to `widths`; numbers (`right[i]`) aligned right; ends with a newline.
fn table_row(row: &[String], widths: &[usize], right: &[bool]) -> String {
    let mut line = String::new();
    for (c, cell) in row.iter().enumerate() {
        let width = widths.get(c).copied().unwrap_or(0);
        if c > 0 {
            line.push_str("  ");
        }
        if right.get(c).copied().unwrap_or(false) {
            let _ = write!(line, "{cell:>width$}");
        } else {
            let _ = write!(line, "{cell:<width$}");
        }
    }
    let mut line = line.trim_end().to_owned();
    line.push('\n');
    line
}

/// Rows as columns padded to their widest cell.
fn table(rows: &[Vec<String>], right: &[bool]) -> String {
    let widths = column_widths(rows);
    rows.iter()
        .map(|row| table_row(row, &widths, right))
        .collect()
}

fn category(value: i32) -> String {
    match GrantCategory::try_from(value) {
        Ok(GrantCategory::Paid) => "paid".into(),
        Ok(GrantCategory::Promotional) => "promotional".into(),
        Ok(GrantCategory::Unspecified) => "unspecified".into(),
        Err(_) => format!("category {value}"),
    }
}

/// Totals, then one line per grant. `now_ms` tells upcoming grants from active ones.
pub fn balance(response: &GetBalanceResponse, now_ms: i64) -> String {
    let totals: Vec<Vec<String>> = [
        ("available", response.available),
        ("pending", response.pending),
        ("upcoming", response.upcoming),
        ("overdraft", response.overdraft),
    ]
    .into_iter()
    .map(|(name, micros)| vec![name.into(), format_credits(micros), "credits".into()])
    .collect();
    let mut out = table(&totals, &[false, true, false]);
    if response.grants.is_empty() {
        out.push_str("no grants\n");
        return out;
    }
    let mut rows = vec![
        [
            "GRANT",
            "CATEGORY",
            "PRIORITY",
            "GRANTED",
            "USED",
            "PENDING",
            "AVAILABLE",
            "EXPIRES",
            "STATUS",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for grant in &response.grants {
        let status = if grant.expired {
            "expired".to_owned()
        } else if grant.effective_at_ms > now_ms {
            format!("from {}", format_time_ms(grant.effective_at_ms))
        } else {
            "active".to_owned()
        };
        let expires = match grant.expires_at_ms {
            0 => "never".to_owned(),
            ms => format_time_ms(ms),
        };
        rows.push(vec![
            grant.grant_id.to_string(),
            category(grant.category),
            grant.priority.to_string(),
            format_credits(grant.granted),
            format_credits(grant.used),
            format_credits(grant.pending),
            format_credits(grant.available),
            expires,
            status,
        ]);
    }
    out.push_str(&table(
        &rows,
        &[true, false, true, true, true, true, true, false, false],
    ));
    out
}

/// One header line per entry, then one line per leg (amounts in credits), legs aligned
/// across all entries.
pub fn entries(entries: &[JournalEntry]) -> String {
    let leg_rows: Vec<Vec<Vec<String>>> = entries
        .iter()
        .map(|entry| {
            entry
                .legs
                .iter()
                .map(|leg| {
                    vec![
                        "   ".into(),
                        leg.kind.clone(),
                        format_credits(leg.amount),
                        format!("debit {}", leg.debit),
                        format!("credit {}", leg.credit),
                    ]
                })
                .collect()
        })
        .collect();
    let all_legs: Vec<Vec<String>> = leg_rows.iter().flatten().cloned().collect();
    let widths = column_widths(&all_legs);
    let right = [false, false, true, false, false];
    let mut out = String::new();
    for (entry, legs) in entries.iter().zip(&leg_rows) {
        let _ = write!(
            out,
            "#{} {} {}",
            entry.id,
            format_time_ms(entry.time_ms),
            entry.kind
        );
        if entry.subject_id != 0 {
            let _ = write!(out, " (subject {})", entry.subject_id);
        }
        let short_hash: String = entry.hash.chars().take(SHORT_HASH_HEX_DIGITS).collect();
        let _ = writeln!(out, " hash {short_hash}");
        for leg in legs {
            out.push_str(&table_row(leg, &widths, &right));
        }
    }
    out
}

/// The customer, its plan, then one line per effective feature.
pub fn customer(response: &GetCustomerResponse) -> String {
    let mut out = format!("customer {}", response.customer_id);
    if !response.display_name.is_empty() {
        let _ = write!(out, " ({})", response.display_name);
    }
    if response.plan.is_empty() {
        out.push_str("\n  plan: none (no subscription)");
    } else {
        let _ = write!(
            out,
            "\n  plan: {} since {}",
            response.plan,
            format_time_ms(response.subscribed_since_ms)
        );
    }
    if !response.policy_version.is_empty() {
        let _ = write!(out, "\n  policy: {}", response.policy_version);
    }
    out.push('\n');
    if response.features.is_empty() {
        out.push_str("  no features\n");
        return out;
    }
    let mut rows = vec![
        ["  FEATURE", "KIND", "VALUE", "SOURCE"]
            .map(String::from)
            .to_vec(),
    ];
    for feature in &response.features {
        let value = match (feature.kind.as_str(), feature.enabled) {
            ("configuration", _) => match (&feature.number, &feature.choice) {
                (Some(number), _) => number.to_string(),
                (None, Some(choice)) => format!("{choice:?}"),
                (None, None) => "-".to_owned(),
            },
            ("metered", true) if feature.unlimited => format!(
                "unlimited, used {} (pending {})",
                feature.used, feature.pending
            ),
            ("metered", true) => {
                let mut value = format!(
                    "used {} of {} (pending {}), {}",
                    feature.used, feature.limit, feature.pending, feature.enforcement
                );
                if feature.resets_at_ms != 0 {
                    let _ = write!(value, ", resets {}", format_time_ms(feature.resets_at_ms));
                }
                value
            }
            (_, true) => "enabled".to_owned(),
            (_, false) => "disabled".to_owned(),
        };
        rows.push(vec![
            format!("  {}", feature.id),
            feature.kind.clone(),
            value,
            feature.source.clone(),
        ]);
    }
    out.push_str(&table(&rows, &[]));
    out
}

#[cfg(test)]
#[path = "tables_tests.rs"]
mod tests;
