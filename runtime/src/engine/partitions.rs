//! Customers hash to a fixed number of partitions, each with its own engine and store.

use std::path::Path;
use std::sync::Arc;

use super::{Clock, Engine, EngineConfig, EngineError, EngineThread};
use crate::store::embedded::EmbeddedStore;

/// Most partitions one process runs; each has a writer thread and a log.
pub const MAX_PARTITIONS: u32 = 1024;

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
    /// Opens `count` embedded partitions under `data_dir` (`partition-0000`, ...). The
    /// count is recorded on first start; a different count later is refused, since it
    /// would move customers away from their logs.
    pub fn open_embedded(
        data_dir: &Path,
        count: u32,
        clock: Arc<dyn Clock>,
        config: EngineConfig,
    ) -> Result<Partitions, EngineError> {
        if count == 0 || count > MAX_PARTITIONS {
            return Err(EngineError::Recovery(format!(
                "partitions must be between 1 and {MAX_PARTITIONS}, got {count}"
            )));
        }
        let recovery = |what: String| EngineError::Recovery(what);
        std::fs::create_dir_all(data_dir)
            .map_err(|e| recovery(format!("create {}: {e}", data_dir.display())))?;
        let marker = data_dir.join("PARTITIONS");
        match std::fs::read_to_string(&marker) {
            Ok(recorded) => {
                let recorded = recorded.trim();
                if recorded != count.to_string() {
                    return Err(recovery(format!(
                        "{} was created with {recorded} partitions, not {count}",
                        data_dir.display()
                    )));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::write(&marker, format!("{count}\n"))
                    .and_then(|_| std::fs::File::open(data_dir)?.sync_all())
                    .map_err(|e| recovery(format!("write {}: {e}", marker.display())))?;
            }
            Err(e) => return Err(recovery(format!("read {}: {e}", marker.display()))),
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
