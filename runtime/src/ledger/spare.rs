//! Chunks of memory touched before the ledger needs them.
//!
//! The ledger grows with every call: journal entries until a snapshot archives them, holds
//! and idempotency answers for their window, each in fixed-size chunks. A page a process
//! writes for the first time costs a fault in which the kernel zeroes it, and on a virtual
//! machine whose host backs the guest's memory only once it is used (a balloon that reports
//! free pages, as on the machines this project is measured on) that first write took 10-30
//! us a page: a tenth of the server's core, paid inside whichever calls crossed into a new
//! page (BENCHMARKS.md, sessions 22 and 23). A call should not wait for that.
//!
//! So each growing structure can take its next chunk from a `Pool` that keeps a few chunks
//! allocated and written over, one write a page, ahead of need, and give back the chunks
//! it lets go of. A thread of its own refills the pools a page at a time, only while the
//! threads that serve calls are parked (`engine::spares`), in time the core would otherwise
//! idle away: the JVM's `AlwaysPreTouch`, and TigerBeetle's memory allocated whole at
//! start, for the same reason, without a bound on the ledger's size. The ledger never waits
//! for a pool: a pool that is empty, or busy for the moment, gives nothing, and the ledger
//! allocates as before.

use std::fmt;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::Thread;

use super::entry::Entry;
use super::state::{Hold, KeyEntry};

/// The granule the kernel backs memory in (4 KiB pages; huge pages are off, see
/// `serve::disable_huge_pages`). Touching one byte in each backs the whole chunk.
const PAGE: usize = 4096;

/// Chunks of `T`, each with room for `items` of them, allocated and touched.
pub(crate) struct Pool<T> {
    ready: Mutex<Vec<Vec<T>>>,
    /// The chunk the filler is touching, and the next item to write (`fill`).
    filling: Mutex<Option<(Vec<T>, usize)>>,
    /// Room of each chunk, in items.
    items: usize,
    /// Chunks kept ready; chunks given back beyond twice this are dropped.
    keep: usize,
    /// The thread that refills the pools, woken once a take leaves fewer than `keep`.
    filler: Arc<OnceLock<Thread>>,
    /// Takes that got a chunk, and takes that did not (the ledger allocated it).
    taken: AtomicU64,
    missed: AtomicU64,
}

impl<T> Pool<T> {
    fn new(items: usize, keep: usize, filler: Arc<OnceLock<Thread>>) -> Self {
        Pool {
            ready: Mutex::new(Vec::with_capacity(2 * keep)),
            filling: Mutex::new(None),
            items,
            keep,
            filler,
            taken: AtomicU64::new(0),
            missed: AtomicU64::new(0),
        }
    }

    /// An empty chunk with room for `items`, touched if the pool had one ready. Never waits:
    /// `None` when none is ready or the filler holds the pool this moment.
    pub(crate) fn take(&self) -> Option<Vec<T>> {
        let taken = self.ready.try_lock().ok().and_then(|mut ready| {
            let chunk = ready.pop()?;
            Some((chunk, ready.len() < self.keep))
        });
        let Some((chunk, low)) = taken else {
            self.missed.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        self.taken.fetch_add(1, Ordering::Relaxed);
        if low && let Some(filler) = self.filler.get() {
            filler.unpark();
        }
        Some(chunk)
    }

    /// What the pool has done: chunks ready now, takes that got one, takes that did not.
    fn figures(&self, kind: &'static str) -> SpareFigures {
        SpareFigures {
            kind,
            ready: self.ready() as u64,
            taken: self.taken.load(Ordering::Relaxed),
            missed: self.missed.load(Ordering::Relaxed),
        }
    }

    /// A chunk the ledger is done with: emptied and kept for the next `take` (its pages are
    /// backed already), unless the pool is full or busy.
    pub(crate) fn give(&self, mut chunk: Vec<T>) {
        if chunk.capacity() != self.items {
            return;
        }
        chunk.clear();
        if let Ok(mut ready) = self.ready.try_lock()
            && ready.len() < 2 * self.keep
        {
            ready.push(chunk);
        }
    }

    /// Gives back chunks the ledger let go of, each once nothing else holds it (a snapshot's
    /// image, the archive); the rest are dropped. Emptying a chunk drops its items: call it
    /// where that keeps no caller waiting.
    pub(crate) fn recycle(&self, chunks: impl IntoIterator<Item = Arc<Vec<T>>>) {
        for chunk in chunks {
            if let Ok(chunk) = Arc::try_unwrap(chunk) {
                self.give(chunk);
            }
        }
    }

    /// Chunks ready now.
    pub(crate) fn ready(&self) -> usize {
        self.ready.lock().map_or(0, |ready| ready.len())
    }

    /// Touches chunks, one page at a time while `go_on` says so, until `keep` are ready.
    /// A chunk is allocated, then written once a page (`blank` at every `PAGE` bytes and in
    /// its last item), then added to the ready ones; one stopped half way is taken up again
    /// by the next call. The length stays 0: nothing written is ever read or dropped, so
    /// `blank` must own no memory of its own.
    fn fill(&self, blank: impl Fn() -> T, go_on: &mut impl FnMut() -> bool) -> Fill {
        let Ok(mut filling) = self.filling.lock() else {
            return Fill::Full;
        };
        let step = (PAGE / size_of::<T>().max(1)).max(1);
        loop {
            if filling.is_none() && self.ready() >= self.keep {
                return Fill::Full;
            }
            let (chunk, next) = filling.get_or_insert_with(|| (Vec::with_capacity(self.items), 0));
            let room = chunk.spare_capacity_mut();
            while *next < room.len() {
                if !go_on() {
                    return Fill::Stopped;
                }
                room[*next] = MaybeUninit::new(blank());
                *next += step;
            }
            if let Some(last) = room.last_mut() {
                *last = MaybeUninit::new(blank());
            }
            if let (Some((chunk, _)), Ok(mut ready)) = (filling.take(), self.ready.lock()) {
                ready.push(chunk);
            }
        }
    }
}

/// One pool's figures (`Spares::figures`, exported by `/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpareFigures {
    /// `journal`, `holds` or `answers`.
    pub kind: &'static str,
    /// Chunks ready now.
    pub ready: u64,
    /// Chunks the ledger took from the pool since start.
    pub taken: u64,
    /// Chunks the ledger needed and the pool had none ready (or was busy that moment): it
    /// allocated them, and calls paid for their pages' first touch.
    pub missed: u64,
}

/// How a `fill` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// Every pool holds the chunks it keeps.
    Full,
    /// `go_on` said to stop first.
    Stopped,
}

impl<T> fmt::Debug for Pool<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("items", &self.items)
            .field("keep", &self.keep)
            .field("ready", &self.ready())
            .finish()
    }
}

/// The pools of one process's ledgers: journal chunks, hold chunks and answer chunks.
#[derive(Debug)]
pub struct Spares {
    pub(crate) entries: Arc<Pool<Entry>>,
    pub(crate) holds: Arc<Pool<Option<Hold>>>,
    pub(crate) answers: Arc<Pool<Option<KeyEntry>>>,
    filler: Arc<OnceLock<Thread>>,
}

/// Chunks kept ready of each kind: at 20,000 Reserve + Commit pairs a second (two journal
/// entries, one hold and two answers a pair) about 0.8 s of the journal's and the holds'
/// growth and 0.4 s of the answers': about 6 MiB in all. No take found its pool empty in
/// runs at 24,000-27,000 pairs a second (BENCHMARKS.md, session 23).
const KEEP_ENTRIES: usize = 8;
const KEEP_NUMBERED: usize = 4;

impl Spares {
    pub fn new() -> Arc<Spares> {
        let filler = Arc::new(OnceLock::new());
        Arc::new(Spares {
            entries: Arc::new(Pool::new(
                super::journal::CHUNK_ENTRIES,
                KEEP_ENTRIES,
                filler.clone(),
            )),
            holds: Arc::new(Pool::new(
                super::numbered::CHUNK,
                KEEP_NUMBERED,
                filler.clone(),
            )),
            answers: Arc::new(Pool::new(
                super::numbered::CHUNK,
                KEEP_NUMBERED,
                filler.clone(),
            )),
            filler,
        })
    }

    /// Names the thread a take wakes when a pool runs low (the first one named stays).
    pub fn set_filler(&self, thread: Thread) {
        let _ = self.filler.set(thread);
    }

    /// Touches chunks for the pools below what they keep, the journal's (which uses most)
    /// first, one page at a time while `go_on` says so (`Pool::fill`).
    pub fn fill(&self, mut go_on: impl FnMut() -> bool) -> Fill {
        if self.entries.fill(Entry::blank, &mut go_on) == Fill::Stopped
            || self.answers.fill(|| None, &mut go_on) == Fill::Stopped
        {
            return Fill::Stopped;
        }
        self.holds.fill(|| None, &mut go_on)
    }

    /// Each pool's figures: journal, holds, answers.
    pub fn figures(&self) -> [SpareFigures; 3] {
        [
            self.entries.figures("journal"),
            self.holds.figures("holds"),
            self.answers.figures("answers"),
        ]
    }

    /// Chunks ready: journal, holds, answers.
    pub fn ready(&self) -> (usize, usize, usize) {
        (
            self.entries.ready(),
            self.holds.ready(),
            self.answers.ready(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(items: usize, keep: usize) -> Pool<Option<u64>> {
        Pool::new(items, keep, Arc::new(OnceLock::new()))
    }

    #[test]
    fn a_pool_keeps_touched_chunks_ready_and_never_makes_the_ledger_wait() {
        let pool = pool(1000, 2);
        assert!(pool.take().is_none(), "nothing ready yet");
        assert_eq!(pool.fill(|| None, &mut || true), Fill::Full);
        assert_eq!(pool.ready(), 2, "two are all it keeps");
        let chunk = pool.take().unwrap();
        assert_eq!((chunk.len(), chunk.capacity()), (0, 1000));
        {
            let _filler = pool.ready.lock().unwrap();
            assert!(pool.take().is_none(), "a busy pool gives nothing");
        }
        assert_eq!(pool.ready(), 1);
        let figures = pool.figures("test");
        assert_eq!((figures.ready, figures.taken, figures.missed), (1, 1, 2));
    }

    /// A fill stopped half way goes on where it stopped: each page is written once.
    #[test]
    fn a_stopped_fill_goes_on_where_it_stopped() {
        // 4,096 items of 16 bytes: 16 pages a chunk.
        let pool = pool(4096, 2);
        let mut pages = 0;
        let mut five = || {
            pages += 1;
            pages <= 5
        };
        assert_eq!(pool.fill(|| None, &mut five), Fill::Stopped);
        assert_eq!(pool.ready(), 0);
        let mut more = 0;
        assert_eq!(
            pool.fill(|| None, &mut || {
                more += 1;
                true
            }),
            Fill::Full
        );
        assert_eq!(pool.ready(), 2);
        assert_eq!(5 + more, 2 * 16, "every page of both chunks, once");
    }

    #[test]
    fn chunks_given_back_are_emptied_and_kept_up_to_twice_what_the_pool_keeps() {
        let pool = pool(8, 2);
        let shared = Arc::new(vec![Some(1); 8]);
        let held = shared.clone();
        pool.recycle([shared]);
        assert_eq!(pool.ready(), 0, "a chunk still shared is not taken back");
        pool.recycle([held]);
        assert_eq!(pool.ready(), 1);
        assert!(pool.take().unwrap().is_empty());
        pool.give(Vec::with_capacity(16));
        assert_eq!(pool.ready(), 0, "a chunk of another size is dropped");
        for _ in 0..5 {
            pool.give(Vec::with_capacity(8));
        }
        assert_eq!(pool.ready(), 4);
    }

    #[test]
    fn a_take_that_leaves_the_pool_low_wakes_the_filler() {
        let spares = Spares::new();
        let (woken, wake) = std::sync::mpsc::channel();
        let filler = std::thread::spawn(move || {
            std::thread::park();
            let _ = woken.send(());
        });
        spares.set_filler(filler.thread().clone());
        assert_eq!(spares.fill(|| true), Fill::Full);
        let full = (KEEP_ENTRIES, KEEP_NUMBERED, KEEP_NUMBERED);
        assert_eq!(spares.ready(), full);
        assert!(spares.entries.take().is_some());
        wake.recv_timeout(std::time::Duration::from_secs(10))
            .expect("the filler is woken");
        filler.join().unwrap();
        assert_eq!(
            spares.ready(),
            (KEEP_ENTRIES - 1, KEEP_NUMBERED, KEEP_NUMBERED)
        );
        assert_eq!(spares.fill(|| true), Fill::Full);
        assert_eq!(spares.ready(), full);
    }
}
