//! Customers hash to a fixed number of partitions, each with its own engine and store.

use std::path::Path;
use std::sync::Arc;

use super::{Clock, Engine, EngineConfig, EngineError, EngineThread};
use crate::store::embedded::EmbeddedStore;

/// Most partitions one process runs; each has a writer thread and a log.
pub const MAX_PARTITIONS: u32 = 1024;
// A TollgateRuntime may ask for no more than the runtime starts.
const _: () = assert!(tollgate_crds::MAX_PARTITIONS == MAX_PARTITIONS);

/// Partitions of a new embedded data directory. One: a single log takes one `fdatasync`
/// per group commit for the whole process, and one writer applies about a million
/// commands per second, more than the gRPC layer can feed it. Each further partition adds
/// a writer thread and its own `fdatasync` per batch, which costs throughput on a small
/// machine (BENCHMARKS.md: 4 partitions against 1).
pub const DEFAULT_EMBEDDED_PARTITIONS: u32 = 1;

/// The file in an embedded data directory that records its partition count.
const MARKER: &str = "PARTITIONS";

/// Records the partition count, whole or not at all across a crash (a marker whose bytes
/// were never synced can read empty after a power loss, which would stop every later
/// start).
fn write_marker(data_dir: &Path, count: u32) -> Result<(), String> {
    std::fs::create_dir_all(data_dir).map_err(|e| e.to_string())?;
    crate::store::embedded::replace_durably(
        data_dir,
        &data_dir.join(format!("{MARKER}.tmp")),
        &data_dir.join(MARKER),
        &[format!("{count}\n").as_bytes()],
    )
    .map_err(|e| e.to_string())
}

/// The partition count recorded in an embedded data directory; `None` when the directory
/// holds no store yet.
pub fn recorded_count(data_dir: &Path) -> Result<Option<u32>, EngineError> {
    let marker = data_dir.join(MARKER);
    match std::fs::read_to_string(&marker) {
        Ok(recorded) => recorded.trim().parse().map(Some).map_err(|_| {
            EngineError::Recovery(format!(
                "{} holds {:?}, not a partition count",
                marker.display(),
                recorded.trim()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(EngineError::Recovery(format!(
            "read {}: {e}",
            marker.display()
        ))),
    }
}

/// The partition a customer belongs to: CRC-32C of its id, modulo the partition count.
/// Stable across versions and machines (it decides which log holds a customer).
pub fn partition_of(customer: &str, partitions: u32) -> u32 {
    assert!(partitions > 0, "at least one partition");
    crc32c::crc32c(customer.as_bytes()) % partitions
}

/// Every partition's engine in this process.
pub struct Partitions {
    engines: Vec<Engine>,
    threads: Vec<EngineThread>,
}

impl Partitions {
    /// Opens the embedded partitions under `data_dir` (`partition-0000`, ...). The count is
    /// recorded on first start: `None` takes the recorded count, or
    /// `DEFAULT_EMBEDDED_PARTITIONS` for a new directory; a count that differs from the
    /// recorded one is refused, since it would move customers away from their logs.
    pub fn open_embedded(
        data_dir: &Path,
        count: Option<u32>,
        clock: Arc<dyn Clock>,
        config: EngineConfig,
    ) -> Result<Partitions, EngineError> {
        let recovery = |what: String| EngineError::Recovery(what);
        let recorded = recorded_count(data_dir)?;
        let count = match (count, recorded) {
            (Some(asked), Some(recorded)) if asked != recorded => {
                return Err(recovery(format!(
                    "{} was created with {recorded} partitions, not {asked} (leave the \
                     partition count out to use the recorded one)",
                    data_dir.display()
                )));
            }
            (Some(count), _) | (None, Some(count)) => count,
            (None, None) => DEFAULT_EMBEDDED_PARTITIONS,
        };
        if count == 0 || count > MAX_PARTITIONS {
            return Err(recovery(format!(
                "partitions must be between 1 and {MAX_PARTITIONS}, got {count}"
            )));
        }
        if recorded.is_none() {
            write_marker(data_dir, count)
                .map_err(|e| recovery(format!("write {}: {e}", data_dir.join(MARKER).display())))?;
        }
        let mut engines = Vec::with_capacity(count as usize);
        let mut threads = Vec::with_capacity(count as usize);
        for p in 0..count {
            let dir = data_dir.join(format!("partition-{p:04}"));
            let store = EmbeddedStore::open(&dir).map_err(|e| recovery(e.to_string()))?;
            let (engine, thread) = Engine::start(Box::new(store), clock.clone(), config.clone())?;
            engines.push(engine);
            threads.push(thread);
        }
        Ok(Partitions { engines, threads })
    }

    pub fn for_customer(&self, customer: &str) -> &Engine {
        &self.engines[partition_of(customer, self.engines.len() as u32) as usize]
    }

    pub fn engines(&self) -> &[Engine] {
        &self.engines
    }

    /// Drops every handle and waits for the writers to leave their final snapshots.
    pub fn shutdown(self) {
        drop(self.engines);
        for thread in self.threads {
            thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::SystemClock;

    fn open(dir: &Path, count: Option<u32>) -> Result<Partitions, EngineError> {
        Partitions::open_embedded(dir, count, Arc::new(SystemClock), EngineConfig::default())
    }

    #[tokio::test]
    async fn a_new_directory_gets_the_default_and_records_it() {
        let dir = tempfile::tempdir().unwrap();
        let opened = open(dir.path(), None).unwrap();
        assert_eq!(opened.engines().len(), DEFAULT_EMBEDDED_PARTITIONS as usize);
        opened.shutdown();
        assert_eq!(
            recorded_count(dir.path()).unwrap(),
            Some(DEFAULT_EMBEDDED_PARTITIONS)
        );
    }

    #[tokio::test]
    async fn a_directory_keeps_the_count_it_was_created_with() {
        let dir = tempfile::tempdir().unwrap();
        open(dir.path(), Some(4)).unwrap().shutdown();
        // Left out: the recorded count, not the default.
        let reopened = open(dir.path(), None).unwrap();
        assert_eq!(reopened.engines().len(), 4);
        reopened.shutdown();
        // The same count given: accepted.
        open(dir.path(), Some(4)).unwrap().shutdown();
        // Another count: refused, naming both.
        let Err(refused) = open(dir.path(), Some(2)) else {
            panic!("a different count must be refused")
        };
        let message = refused.to_string();
        assert!(
            message.contains("created with 4 partitions, not 2"),
            "{message}"
        );
        assert!(!dir.path().join("partition-0004").exists());
    }

    #[tokio::test]
    async fn counts_out_of_range_and_unreadable_markers_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for count in [0, MAX_PARTITIONS + 1] {
            let Err(refused) = open(dir.path(), Some(count)) else {
                panic!("{count} partitions must be refused")
            };
            assert!(refused.to_string().contains("between 1 and"), "{refused}");
        }
        assert_eq!(
            recorded_count(dir.path()).unwrap(),
            None,
            "nothing recorded"
        );
        std::fs::write(dir.path().join(MARKER), "four\n").unwrap();
        let Err(refused) = open(dir.path(), None) else {
            panic!("a marker that is not a number must be refused")
        };
        assert!(
            refused.to_string().contains("not a partition count"),
            "{refused}"
        );
    }
}
