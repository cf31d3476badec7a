//! A partition's journal as a test reads it: what is in memory, and every entry by id.

use tollgate_runtime::engine::Engine;
use tollgate_runtime::ledger::{Entry, EntryId};

/// The journal entries the ledger keeps in memory, and how many it archived.
pub async fn in_memory(engine: &Engine) -> (u64, Vec<Entry>) {
    engine
        .read(|l| {
            let journal = l.journal();
            (journal.archived(), journal.iter().cloned().collect())
        })
        .await
        .unwrap()
}

/// Every entry by id, from the archive up to what it holds and from memory after.
pub async fn every_entry(engine: &Engine) -> Vec<Entry> {
    let archive = engine
        .journal_archive()
        .expect("the store keeps an archive");
    let (archived, mut tail) = in_memory(engine).await;
    let mut all = tokio::task::spawn_blocking(move || {
        (1..=archived)
            .map(|id| archive.get(EntryId(id)).unwrap())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    all.append(&mut tail);
    all
}
