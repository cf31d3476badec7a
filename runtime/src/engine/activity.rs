//! Whether the threads that apply commands have work: the writer cuts a batch once they
//! have run out of it, so that a burst of calls lands in one batch, not in two.
//!
//! Without this the writer cuts the open batch the moment the previous write returns. At
//! load, calls arrive in bursts (the answers of one batch go out together and their next
//! calls come back together), and the writer cut each burst in two: the part applied by
//! then, and the rest one durable write later. Each write costs the server about 100 us of
//! CPU here (a write and a cache flush, each a VM exit on a virtual disk; BENCHMARKS.md,
//! session 10), on the core that serves the calls.
//!
//! The async runtime reports its threads parking (nothing left to run) and waking through
//! its park hooks (`serve::build_runtime`). The writer, finding a batch to cut while some
//! thread is still at work, waits until every thread has parked or `CUT_WAIT` has passed,
//! whichever comes first. An idle server cuts at once: the thread that applied the command
//! parks right after, so a lone call waits no longer than before. A runtime without these
//! hooks (`EngineConfig::activity` unset) gets the old behaviour.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// Longest a writer waits, by default, for the runtime's threads to run out of work before
/// it cuts a batch anyway (a saturated runtime never does): bounds what waiting adds to a
/// call. In trials here, 150 us and 400 us cut writer CPU per Reserve + Commit alike.
pub const CUT_WAIT: Duration = Duration::from_micros(200);

/// Longest `Activity::give_way` waits for the runtime's threads to park.
pub(crate) const GIVE_WAY_WAIT: Duration = Duration::from_millis(1);

/// What the runtime's park hooks report, and the writers waiting on it.
#[derive(Debug)]
pub struct Activity {
    /// Threads that run callers (the runtime's workers).
    threads: usize,
    /// Of those, how many are parked now.
    parked: AtomicUsize,
    /// Writers in `wait_until_idle` now (how many, and which).
    waiting: AtomicUsize,
    waiters: Mutex<Vec<Thread>>,
}

impl Activity {
    /// For a runtime of `threads` worker threads, none parked yet.
    pub fn new(threads: usize) -> Activity {
        Activity {
            threads,
            parked: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            waiters: Mutex::new(Vec::new()),
        }
    }

    /// The runtime's `on_thread_park` hook: a thread has nothing left to run.
    pub fn parking(&self) {
        self.parked.fetch_add(1, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) > 0 {
            for writer in self.waiters().iter() {
                writer.unpark();
            }
        }
    }

    /// The runtime's `on_thread_unpark` hook: a parked thread has work again.
    pub fn unparked(&self) {
        // Each unpark follows a park; never below zero, even if a hook were misplaced.
        let _ = self
            .parked
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    }

    /// Some thread of the runtime is at work.
    pub fn busy(&self) -> bool {
        self.parked.load(Ordering::SeqCst) < self.threads
    }

    /// On a thread doing work nothing waits for (a snapshot's encoding and writing), between
    /// two short pieces of it (`background::pause_point`). It yields the core first: at nice 10
    /// the scheduler still gives such a thread its fair share, about a tenth of the core
    /// here, in slices of milliseconds, and a call's thread that woke meanwhile waited for
    /// the slice to end; after a yield it waits for one piece at most. Then, while some
    /// thread of the runtime works, it waits until they all park or `GIVE_WAY_WAIT` has
    /// passed, so that the work runs while calls wait on the disk, and still goes on, a
    /// piece per `GIVE_WAY_WAIT`, beside a runtime that never parks.
    ///
    /// Beside Reserve + Commit at 64 in flight, encoding a 330 MB snapshot at nice 10 raised
    /// their p99 from 3.5 ms to 7.3-9.2 ms for the 7-9 s it took, with or without the wait.
    /// With the yield as well, and pause points in every long step, the p99 of each 5 s of
    /// a 150 s run stayed at 3.4-5.1 ms, and the run's was 3.86-4.03 ms instead of 5.5-5.8; a
    /// snapshot then takes 35-40 s from image to file instead of 11-13 s (BENCHMARKS.md,
    /// session 24).
    pub(crate) fn give_way(&self) {
        std::thread::yield_now();
        self.wait_while_busy();
    }

    /// `give_way`'s wait: none while every thread of the runtime is parked, else until they
    /// all are or `GIVE_WAY_WAIT` has passed.
    fn wait_while_busy(&self) {
        if self.busy() {
            self.wait_until_idle(GIVE_WAY_WAIT, || false);
        }
    }

    /// `give_way` for background threads' `pause_point`s (`background::give_way_here`).
    pub(crate) fn giving_way(self: Arc<Self>) -> crate::background::GiveWay {
        Arc::new(move || self.give_way())
    }

    /// On a writer thread: returns once every thread of the runtime has parked, `done`
    /// says so, or after `limit`. `done` is asked again whenever the thread is unparked
    /// (`Engine` unparks its writer when the open batch fills up).
    pub(crate) fn wait_until_idle(&self, limit: Duration, done: impl Fn() -> bool) {
        let until = Instant::now() + limit;
        let me = std::thread::current();
        self.waiters().push(me.clone());
        // Counted before looking, so that a thread parking after the look wakes us.
        self.waiting.fetch_add(1, Ordering::SeqCst);
        loop {
            let now = Instant::now();
            if !self.busy() || done() || now >= until {
                break;
            }
            std::thread::park_timeout(until - now);
        }
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let mut waiters = self.waiters();
        if let Some(at) = waiters.iter().position(|t| t.id() == me.id()) {
            waiters.swap_remove(at);
        }
    }

    /// Writers waiting now (for tests).
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    fn waiters(&self) -> std::sync::MutexGuard<'_, Vec<Thread>> {
        // Holders push, remove or iterate, and cannot panic in between.
        self.waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_until_every_thread_parks() {
        let activity = Activity::new(2);
        assert!(activity.busy());
        activity.parking();
        assert!(activity.busy(), "one of two threads still works");
        activity.parking();
        assert!(!activity.busy());
        activity.unparked();
        assert!(activity.busy());
    }

    #[test]
    fn an_unpark_without_a_park_is_ignored() {
        let activity = Activity::new(1);
        activity.unparked();
        activity.parking();
        assert!(!activity.busy());
    }

    #[test]
    fn an_idle_runtime_is_not_waited_for() {
        let activity = Activity::new(1);
        activity.parking();
        let started = Instant::now();
        activity.wait_until_idle(Duration::from_secs(10), || false);
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(activity.waiting(), 0);
    }

    #[test]
    fn a_busy_runtime_is_waited_for_at_most_the_limit() {
        let activity = Activity::new(1);
        let started = Instant::now();
        activity.wait_until_idle(Duration::from_millis(50), || false);
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(50), "{waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
    }

    /// Background work between its pieces: on at once while the runtime is parked, after
    /// `GIVE_WAY_WAIT` at most while it works (it is never starved). (The yield before the
    /// wait is left out: its time depends on what else the machine runs.)
    #[test]
    fn background_work_waits_while_the_runtime_works_and_no_longer() {
        let activity = Activity::new(1);
        let started = Instant::now();
        for _ in 0..20 {
            activity.wait_while_busy();
        }
        let waited = started.elapsed();
        assert!(waited >= 20 * GIVE_WAY_WAIT, "waited each time: {waited:?}");
        assert!(waited < Duration::from_secs(5), "{waited:?}");
        assert_eq!(activity.waiting(), 0);
        activity.parking();
        let started = Instant::now();
        for _ in 0..1_000 {
            activity.wait_while_busy();
        }
        assert!(
            started.elapsed() < 500 * GIVE_WAY_WAIT,
            "never waits for a parked runtime: {:?}",
            started.elapsed()
        );
    }

    /// A writer thread waiting up to 20 s (or until `done`), once it waits; it returns how
    /// long it waited.
    fn waiting_writer(
        activity: &Arc<Activity>,
        done: impl Fn() -> bool + Send + 'static,
    ) -> std::thread::JoinHandle<Duration> {
        let writer = std::thread::spawn({
            let activity = activity.clone();
            move || {
                let started = Instant::now();
                activity.wait_until_idle(Duration::from_secs(20), done);
                started.elapsed()
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while activity.waiting() == 0 {
            assert!(
                Instant::now() < deadline,
                "the writer never started waiting"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        writer
    }

    #[test]
    fn a_parking_runtime_wakes_the_waiting_writer() {
        let activity = Arc::new(Activity::new(1));
        // Parked only once the writer waits, so that only the wake-up can end its wait.
        let writer = waiting_writer(&activity, || false);
        activity.parking();
        let waited = writer.join().unwrap();
        assert!(
            waited < Duration::from_secs(10),
            "woken by the park: {waited:?}"
        );
        assert!(
            activity.waiters().is_empty(),
            "a writer done waiting is forgotten"
        );
    }

    #[test]
    fn a_writer_told_its_batch_is_full_stops_waiting() {
        let activity = Arc::new(Activity::new(1));
        let full = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = waiting_writer(&activity, {
            let full = full.clone();
            move || full.load(Ordering::SeqCst)
        });
        full.store(true, Ordering::SeqCst);
        writer.thread().unpark();
        let waited = writer.join().unwrap();
        assert!(
            waited < Duration::from_secs(10),
            "stopped by the full batch: {waited:?}"
        );
    }
}
