//! `ingest`: one usage event from arguments, or a JSON-lines file of them sent in requests
//! of at most 10,000 events, with the answers added up and rejections named by file line.

use super::args::{ClientArgs, IngestArgs};
use super::commands::{Outcome, Reply, dimensions};
use super::connection::Connection;
use super::error::ClientError;
use super::events::{self, MAX_EVENTS_PER_REQUEST};
use super::json::ToJson;
use super::keys::event_id;
use super::text;
use crate::grpc::proto::{IngestRequest, IngestResponse, UsageEvent};

pub(super) async fn ingest_usage(args: &ClientArgs, cmd: IngestArgs) -> Result<Reply, ClientError> {
    let (events, lines) = match cmd.file {
        Some(path) => {
            let file = events::read(&path)?;
            (file.events, Some(file.lines))
        }
        None => (vec![one_event(cmd)?], None),
    };
    let conn = Connection::open(args).await?;
    let mut metering = conn.metering();
    let mut total = IngestResponse::default();
    for (chunk_index, chunk) in events.chunks(MAX_EVENTS_PER_REQUEST).enumerate() {
        let first = chunk_index * MAX_EVENTS_PER_REQUEST;
        let request = conn.request(IngestRequest {
            events: chunk.to_vec(),
        });
        let response = match conn.call(metering.ingest(request)).await {
            Ok(response) => response,
            Err(err) => {
                if first > 0 {
                    eprintln!(
                        "note: {first} of {} events were sent before this error; sending the \
                         file again is safe (event ids are deduplicated)",
                        events.len()
                    );
                }
                return Err(err);
            }
        };
        add_chunk(&mut total, response, first);
    }
    let event = |index: u32| match &lines {
        Some(lines) => match lines.get(index as usize) {
            Some(line) => format!("line {line}"),
            None => format!("event {index}"),
        },
        None => events
            .get(index as usize)
            .map_or_else(|| format!("event {index}"), |e| format!("event {}", e.id)),
    };
    let text = text::ingest(&total, event);
    let outcome = if total.rejected.is_empty() {
        Outcome::Done
    } else {
        Outcome::Denied
    };
    Ok(Reply {
        text,
        json: total.to_json(),
        outcome,
    })
}

/// The event given as arguments (clap requires them without `--file`).
fn one_event(cmd: IngestArgs) -> Result<UsageEvent, ClientError> {
    let missing = |field: &'static str| ClientError::BadInput {
        field,
        value: String::new(),
        why: "is required without --file".into(),
    };
    Ok(UsageEvent {
        customer_id: cmd.customer_id.ok_or_else(|| missing("CUSTOMER_ID"))?,
        feature: cmd.feature.ok_or_else(|| missing("FEATURE"))?,
        quantity: cmd.quantity.ok_or_else(|| missing("QUANTITY"))?,
        subject: events::subject(cmd.subject.team, cmd.subject.user, cmd.subject.agent),
        dimensions: dimensions(cmd.dimensions)?,
        id: event_id(cmd.id),
    })
}

/// Adds one request's answer to the file's total; rejection indexes become file indexes.
/// Counts saturate: they are for display and a file holds at most 1,000,000 events.
fn add_chunk(total: &mut IngestResponse, response: IngestResponse, first: usize) {
    total.accepted = total.accepted.saturating_add(response.accepted);
    total.duplicates = total.duplicates.saturating_add(response.duplicates);
    total.debited_micro_credits = total
        .debited_micro_credits
        .saturating_add(response.debited_micro_credits);
    total.unbilled_micro_credits = total
        .unbilled_micro_credits
        .saturating_add(response.unbilled_micro_credits);
    let offset = u32::try_from(first).unwrap_or(u32::MAX);
    total
        .rejected
        .extend(response.rejected.into_iter().map(|mut rejection| {
            rejection.index = rejection.index.saturating_add(offset);
            rejection
        }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::proto::Rejection;

    #[test]
    fn chunk_answers_add_up_with_file_indexes() {
        let mut total = IngestResponse::default();
        let chunk = |index| IngestResponse {
            accepted: 2,
            duplicates: 1,
            rejected: vec![Rejection {
                index,
                reason: "unknown feature".into(),
            }],
            debited_micro_credits: 5,
            unbilled_micro_credits: 1,
        };
        add_chunk(&mut total, chunk(3), 0);
        add_chunk(&mut total, chunk(4), MAX_EVENTS_PER_REQUEST);
        assert_eq!((total.accepted, total.duplicates), (4, 2));
        assert_eq!(total.debited_micro_credits, 10);
        assert_eq!(total.unbilled_micro_credits, 2);
        let indexes: Vec<u32> = total.rejected.iter().map(|r| r.index).collect();
        assert_eq!(indexes, [3, 10_004]);
    }
}
