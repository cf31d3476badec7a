//! The thread that keeps the ledgers' spare chunks touched ahead of need (`ledger::Spares`).
//!
//! It shares the core with the threads that serve calls, and only ever works while all of
//! them are parked (`Activity`), one page at a time: a call's thread never waits for it
//! longer than one page takes. The scheduler alone does not promise that. Under
//! `SCHED_IDLE` a thread that wakes takes the core from it at once, but a serving thread
//! that was preempted (by the writer, say) and is runnable again can still be passed over
//! for a while: the kernel's fair scheduler owes an idle-class thread the time it was kept
//! waiting, and a trace showed it running 2.65 ms of page touching while the runtime's
//! thread waited (BENCHMARKS.md, session 23).

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::Activity;
use crate::ledger::{Fill, Spares};

/// How long the filler sleeps when no take wakes it: it leaves once the pools are gone.
const IDLE: Duration = Duration::from_secs(1);
/// Longest it waits for the serving threads to park before it looks again.
const WAIT_FOR_IDLE: Duration = Duration::from_millis(50);

/// Starts the thread that refills `spares` whenever a take leaves a pool low, while every
/// thread `activity` reports on is parked. On Linux it runs under `SCHED_IDLE` as well. It
/// leaves within a second of the last engine using the pools stopping.
pub fn start_filler(spares: &Arc<Spares>, activity: Arc<Activity>) -> std::io::Result<()> {
    let pools = Arc::downgrade(spares);
    let thread = std::thread::Builder::new()
        .name("tollgate-spares".into())
        .spawn(move || fill(pools, &activity))?;
    spares.set_filler(thread.thread().clone());
    Ok(())
}

fn fill(pools: Weak<Spares>, activity: &Activity) {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{
            NormalThreadSchedulePolicy, ThreadPriority, ThreadSchedulePolicy,
            set_thread_priority_and_policy, thread_native_id,
        };
        let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
        if let Err(error) =
            set_thread_priority_and_policy(thread_native_id(), ThreadPriority::Min, idle)
        {
            tracing::warn!(
                ?error,
                "the spare chunks' filler runs at the callers' priority"
            );
        }
    }
    loop {
        let Some(spares) = pools.upgrade() else {
            return;
        };
        let filled = spares.fill(|| !activity.busy());
        drop(spares);
        match filled {
            Fill::Full => std::thread::park_timeout(IDLE),
            Fill::Stopped => activity.wait_until_idle(WAIT_FOR_IDLE, || false),
        }
    }
}
