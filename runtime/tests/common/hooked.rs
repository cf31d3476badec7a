//! The embedded store with a hook before each write: the tests' stores that hold a write at
//! a gate, fail it, or drop snapshots change one method and pass the rest on.

use tollgate_runtime::store::embedded::EmbeddedStore;
use tollgate_runtime::store::{Batch, Recovered, Snapshot, Store, StoreError};

type AppendHook = Box<dyn FnMut(&Batch) -> Result<(), StoreError> + Send>;
/// `Ok(false)`: drop the snapshot (as if the store had none).
type SnapshotHook = Box<dyn FnMut() -> Result<bool, StoreError> + Send>;
type BeginHook = Box<dyn FnMut(u64) + Send>;

pub struct Hooked {
    inner: EmbeddedStore,
    before_append: AppendHook,
    before_snapshot: SnapshotHook,
    before_begin: BeginHook,
}

impl Hooked {
    /// The embedded store in `dir`, with no hooks yet.
    pub fn open(dir: &std::path::Path) -> Hooked {
        Hooked {
            inner: EmbeddedStore::open(dir).expect("open the embedded store"),
            before_append: Box::new(|_| Ok(())),
            before_snapshot: Box::new(|| Ok(true)),
            before_begin: Box::new(|_| {}),
        }
    }

    /// Runs `hook` before every append; its error fails the append.
    pub fn before_append(
        mut self,
        hook: impl FnMut(&Batch) -> Result<(), StoreError> + Send + 'static,
    ) -> Hooked {
        self.before_append = Box::new(hook);
        self
    }

    /// Runs `hook` with the batch each snapshot is begun at (its image taken).
    pub fn before_begin(mut self, hook: impl FnMut(u64) + Send + 'static) -> Hooked {
        self.before_begin = Box::new(hook);
        self
    }

    /// Runs `hook` before every snapshot; its error fails it, `Ok(false)` drops it.
    pub fn before_snapshot(
        mut self,
        hook: impl FnMut() -> Result<bool, StoreError> + Send + 'static,
    ) -> Hooked {
        self.before_snapshot = Box::new(hook);
        self
    }
}

impl Store for Hooked {
    fn recover(
        &mut self,
        restore: &mut dyn FnMut(Recovered) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.inner.recover(restore)
    }

    fn append(&mut self, batch: &Batch) -> Result<(), StoreError> {
        (self.before_append)(batch)?;
        self.inner.append(batch)
    }

    fn begin_snapshot(&mut self, seq: u64) -> Result<(), StoreError> {
        (self.before_begin)(seq);
        self.inner.begin_snapshot(seq)
    }

    fn save_snapshot(&mut self, snapshot: Snapshot) -> Result<(), StoreError> {
        if (self.before_snapshot)()? {
            self.inner.save_snapshot(snapshot)
        } else {
            Ok(())
        }
    }
}
