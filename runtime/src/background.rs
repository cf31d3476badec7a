//! Work nothing waits for, on threads beside the ones that serve calls: a snapshot's
//! encoding, its journal archive and its file. On a server whose calls keep one core
//! busy, such work takes its time from the calls; these helpers make it take as little of
//! their latency as they can. Its threads run at nice 10 (`yield_to_callers`) and, where
//! the engine knows when the runtime's threads are at work (`engine::Activity`), give way
//! at each `pause_point`, between pieces of the work short enough (tens of microseconds)
//! that a call's thread never waits long for one: they yield the core, so that a call's
//! thread that is runnable goes first, and wait up to 1 ms while the runtime's threads work.

use std::cell::RefCell;
use std::sync::Arc;

/// What a thread doing work nothing waits for calls at each of its `pause_point`s, to give
/// way to the threads that serve calls (`engine::Activity::give_way`).
pub type GiveWay = Arc<dyn Fn() + Send + Sync>;

thread_local! {
    static GIVE_WAY: RefCell<Option<GiveWay>> = const { RefCell::new(None) };
}

/// Makes this thread's `pause_point`s call `give_way` until the guard is dropped.
pub(crate) fn give_way_here(give_way: GiveWay) -> GivingWay {
    let before = GIVE_WAY.with(|slot| slot.replace(Some(give_way)));
    GivingWay { before }
}

/// While it lives, `pause_point` on its thread gives way (`give_way_here`).
pub(crate) struct GivingWay {
    before: Option<GiveWay>,
}

impl Drop for GivingWay {
    fn drop(&mut self) {
        let before = self.before.take();
        GIVE_WAY.with(|slot| *slot.borrow_mut() = before);
    }
}

/// A point between two short pieces of long work (a piece of a snapshot's encoding, of
/// its file): gives way on a thread that `give_way_here` set up, does nothing elsewhere.
pub(crate) fn pause_point() {
    GIVE_WAY.with(|slot| {
        if let Some(give_way) = &*slot.borrow() {
            give_way();
        }
    });
}

/// Lowers the calling thread's priority (nice 10, Linux): a snapshot only shortens
/// recovery, and its threads (encoding the ledger; copying hundreds of MB into the page
/// cache, checksumming them) would otherwise take cores the partition's callers and writer
/// share. A refusal is logged and changes nothing else.
pub(crate) fn yield_to_callers() {
    #[cfg(target_os = "linux")]
    if let Err(error) = rustix::process::setpriority_process(None, 10) {
        tracing::debug!(%error, "the snapshot thread keeps its priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn pause_points_give_way_only_while_the_guard_lives_and_only_on_its_thread() {
        let calls = Arc::new(AtomicUsize::new(0));
        pause_point();
        let counted = calls.clone();
        let guard = give_way_here(Arc::new(move || {
            counted.fetch_add(1, Ordering::SeqCst);
        }));
        pause_point();
        pause_point();
        std::thread::spawn(pause_point).join().unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2, "this thread's two points");
        drop(guard);
        pause_point();
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "none once the guard is gone"
        );
    }
}
