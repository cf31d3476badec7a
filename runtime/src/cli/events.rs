//! A JSON-lines file of usage events for `ingest --file`. The whole file is checked before
//! anything is sent, so a typo on line 900 does not leave 899 events half-ingested.

use super::error::ClientError;
use crate::grpc::proto::{Subject, UsageEvent};
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

/// Events per Ingest request: the server's limit (metering.proto: 1 to 10,000 events).
pub const MAX_EVENTS_PER_REQUEST: usize = 10_000;
/// Events in one file: 100 requests. A bigger backfill is a job for a script, not a
/// single CLI call that holds it all in memory.
pub const MAX_EVENTS_PER_FILE: usize = 1_000_000;
const _: () = assert!(MAX_EVENTS_PER_FILE.is_multiple_of(MAX_EVENTS_PER_REQUEST));

/// One line of the file. `id` is required: it makes re-sending the file safe.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EventLine {
    id: String,
    customer_id: String,
    feature: String,
    quantity: u64,
    #[serde(default)]
    dimensions: HashMap<String, String>,
    #[serde(default)]
    team: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    agent: Option<String>,
}

/// The events of a file and the 1-based line each came from.
#[derive(Debug)]
pub struct EventFile {
    pub events: Vec<UsageEvent>,
    pub lines: Vec<usize>,
}

/// Reads `path` ("-": stdin) and parses every non-blank line.
pub fn read(path: &Path) -> Result<EventFile, ClientError> {
    let mut text = String::new();
    let read = if path == Path::new("-") {
        std::io::stdin().read_to_string(&mut text)
    } else {
        std::fs::File::open(path).and_then(|mut file| file.read_to_string(&mut text))
    };
    read.map_err(|source| ClientError::ReadFile {
        path: path.to_owned(),
        source,
    })?;
    parse(path, &text)
}

pub fn parse(path: &Path, text: &str) -> Result<EventFile, ClientError> {
    let bad = |line: usize, why: String| ClientError::BadEvent {
        path: path.to_owned(),
        line,
        why,
    };
    let mut file = EventFile {
        events: Vec::new(),
        lines: Vec::new(),
    };
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        if file.events.len() == MAX_EVENTS_PER_FILE {
            return Err(bad(
                number,
                format!("more than {MAX_EVENTS_PER_FILE} events; split the file"),
            ));
        }
        let event: EventLine =
            serde_json::from_str(line).map_err(|err| bad(number, err.to_string()))?;
        if event.id.is_empty() {
            return Err(bad(number, "\"id\" is empty".into()));
        }
        file.events.push(UsageEvent {
            id: event.id,
            customer_id: event.customer_id,
            subject: subject(event.team, event.user, event.agent),
            feature: event.feature,
            quantity: event.quantity,
            dimensions: event.dimensions,
        });
        file.lines.push(number);
    }
    if file.events.is_empty() {
        return Err(bad(0, "no events".into()));
    }
    Ok(file)
}

/// A subject, or none when no field is set.
pub fn subject(
    team: Option<String>,
    user: Option<String>,
    agent: Option<String>,
) -> Option<Subject> {
    if team.is_none() && user.is_none() && agent.is_none() {
        return None;
    }
    Some(Subject {
        team: team.unwrap_or_default(),
        user: user.unwrap_or_default(),
        agent: agent.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<EventFile, ClientError> {
        parse(Path::new("events.jsonl"), text)
    }

    #[test]
    fn parses_events_and_remembers_their_lines() {
        let text = r#"{"id":"e1","customer_id":"cus_1","feature":"llm-tokens","quantity":1500}

{"id":"e2","customer_id":"cus_2","feature":"llm-tokens","quantity":7,"dimensions":{"model":"m"},"agent":"bot"}
"#;
        let file = parse_text(text).unwrap();
        assert_eq!(file.lines, [1, 3]);
        assert_eq!(file.events[0].id, "e1");
        assert_eq!(file.events[0].quantity, 1500);
        assert_eq!(file.events[0].subject, None);
        let second = &file.events[1];
        assert_eq!(second.customer_id, "cus_2");
        assert_eq!(
            second.dimensions.get("model").map(String::as_str),
            Some("m")
        );
        assert_eq!(
            second.subject.as_ref().map(|s| s.agent.as_str()),
            Some("bot")
        );
        assert_eq!(second.subject.as_ref().map(|s| s.team.as_str()), Some(""));
    }

    #[test]
    fn a_bad_line_is_named_by_number() {
        let text = r#"{"id":"e1","customer_id":"c","feature":"f","quantity":1}
{"id":"e2","customer_id":"c","feature":"f","quantity":-1}"#;
        let err = parse_text(text).unwrap_err().to_string();
        assert!(err.starts_with("events.jsonl:2: "), "{err}");
    }

    #[test]
    fn ids_are_required_and_typos_refused() {
        let missing = r#"{"customer_id":"c","feature":"f","quantity":1}"#;
        assert!(parse_text(missing).unwrap_err().to_string().contains("id"));
        let empty = r#"{"id":"","customer_id":"c","feature":"f","quantity":1}"#;
        assert!(parse_text(empty).is_err());
        let typo = r#"{"id":"e","customer_id":"c","feature":"f","quantity":1,"agnet":"a"}"#;
        assert!(parse_text(typo).unwrap_err().to_string().contains("agnet"));
    }

    #[test]
    fn an_empty_file_is_refused() {
        assert!(
            parse_text("\n  \n")
                .unwrap_err()
                .to_string()
                .contains("no events")
        );
    }
}
