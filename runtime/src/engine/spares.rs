//! The thread that keeps the ledgers' spare chunks touched ahead of need (`ledger::Spares`).

use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::ledger::Spares;

/// How long the filler sleeps when no take wakes it: it leaves once the pools are gone.
const IDLE: Duration = Duration::from_secs(1);

/// Starts the thread that refills `spares` whenever a take leaves a pool low. On Linux it
/// runs under `SCHED_IDLE`: only when nothing else wants the core, and a caller's thread
/// that wakes takes the core from it at once (at nice 19 it could keep it for the rest of
/// its time slice). The thread leaves within a second of the last engine using the pools
/// stopping.
pub fn start_filler(spares: &Arc<Spares>) -> std::io::Result<()> {
    let pools = Arc::downgrade(spares);
    let thread = std::thread::Builder::new()
        .name("tollgate-spares".into())
        .spawn(move || fill(pools))?;
    spares.set_filler(thread.thread().clone());
    Ok(())
}

fn fill(pools: Weak<Spares>) {
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
        if !spares.fill_one() {
            drop(spares);
            std::thread::park_timeout(IDLE);
        }
    }
}
