//! Where the ML work that no request waits for runs: fits, pool scoring,
//! cold starts. Each job gets a thread of its own at a lower CPU priority
//! than the threads that answer requests (nice +[`NICE`] on Linux): when
//! both want a core, the scheduler gives the request's thread the larger
//! share; when no request waits, the job has every core.
//!
//! Work a request waits for (a prediction, an import's parsing) stays on
//! tokio's blocking pool at normal priority.
use anyhow::anyhow;
use std::future::Future;
use tokio::sync::oneshot;

/// A background thread's nice value. The scheduler weighs a nice-10 thread
/// at about a tenth of a nice-0 one when both want the same core.
pub const NICE: i32 = 10;

/// Starts `f` on a new low-priority thread named `loupe-{what}` at once and
/// returns a future of its result, awaited without blocking the executor.
/// A panic in `f` comes back as an error.
pub fn spawn<R, F>(what: &'static str, f: F) -> impl Future<Output = anyhow::Result<R>> + Send
where
    R: Send + 'static,
    F: FnOnce() -> R + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let started = std::thread::Builder::new()
        .name(format!("loupe-{what}"))
        .spawn(move || {
            lower_priority();
            let _ = tx.send(f());
        });
    async move {
        started.map_err(|e| anyhow!("starting a {what} thread: {e}"))?;
        rx.await.map_err(|_| anyhow!("the {what} task panicked"))
    }
}

/// Lowers the calling thread's CPU priority to nice [`NICE`] unless it is
/// lower already (a server started with `nice -n 15` keeps 15). On Linux a
/// nice value belongs to a thread, and `PRIO_PROCESS` with id 0 names the
/// calling one. A failure (none is expected: raising one's own nice value
/// needs no privilege) leaves the thread at its priority.
///
/// Not `SCHED_IDLE`, which was tried: with 8 annotators labelling flat out
/// it starved a 12,000-label fit to 108 s (18–21 s at nice +10 in the same
/// benchmark), for no `queue/next` p99 a run could tell apart.
#[cfg(target_os = "linux")]
fn lower_priority() {
    // SAFETY: getpriority and setpriority only read their integer
    // arguments. getpriority's -1 may be an error as well as nice -1:
    // either way the thread is set to NICE.
    let rc = unsafe {
        if libc::getpriority(libc::PRIO_PROCESS, 0) >= NICE {
            return;
        }
        libc::setpriority(libc::PRIO_PROCESS, 0, NICE)
    };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "lowering a background thread's priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_at_a_lower_priority_and_returns_panics_as_errors() {
        let got = spawn("test", || 6 * 7).await.unwrap();
        assert_eq!(got, 42);
        #[cfg(target_os = "linux")]
        {
            // SAFETY: getpriority only reads its integer arguments.
            let nice = spawn("test", || unsafe {
                libc::getpriority(libc::PRIO_PROCESS, 0)
            })
            .await
            .unwrap();
            // SAFETY: as above.
            let own = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
            assert_eq!(nice, own.max(NICE));
        }
        let err = spawn("test", || -> i32 { panic!("boom") })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("panicked"), "{err}");
    }
}
