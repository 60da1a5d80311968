//! The worker pools: one per thread count, made on first use and kept for the process, so a
//! program that compresses many small inputs (a daemon, a data pipeline, the streaming
//! [`Encoder`](crate::stream::Encoder)) does not start and stop threads on every call.
//!
//! A program with its own rayon pool passes it by calling arca inside
//! [`ThreadPool::install`](rayon::ThreadPool::install) with `threads` = 0: the work then runs on
//! that pool and arca starts no threads at all. The output never depends on which pool ran it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use rayon::{ThreadPool, ThreadPoolBuilder};

/// The process's pool of `threads` workers (0 = one per core), or why it could not start.
pub(crate) fn pool(threads: usize) -> Result<Arc<ThreadPool>, String> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<ThreadPool>>>> = OnceLock::new();
    let mut pools = POOLS
        .get_or_init(Mutex::default)
        .lock()
        // A panic while the map was held cannot leave it half-updated (one insert).
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(pool) = pools.get(&threads) {
        return Ok(Arc::clone(pool));
    }
    let pool = ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("arca-{i}"))
        .build()
        .map_err(|e| format!("cannot start {threads} threads: {e}"))?;
    let pool = Arc::new(pool);
    pools.insert(threads, Arc::clone(&pool));
    Ok(pool)
}

/// Runs `f` on `threads` workers: 0 means the rayon pool the caller is running in (when called
/// from inside [`ThreadPool::install`](rayon::ThreadPool::install) or a pool's task), otherwise
/// the process's pool of one worker per core; any other count, the process's pool of that size.
pub(crate) fn install<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> Result<R, String> {
    if threads == 0 && rayon::current_thread_index().is_some() {
        return Ok(f());
    }
    Ok(pool(threads)?.install(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_pool_per_thread_count() {
        let a = pool(2).expect("pool");
        let b = pool(2).expect("pool");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.current_num_threads(), 2);
        assert!(!Arc::ptr_eq(&a, &pool(3).expect("pool")));
    }

    #[test]
    fn zero_threads_runs_on_the_callers_pool() {
        let mine = ThreadPoolBuilder::new()
            .num_threads(3)
            .thread_name(|i| format!("mine-{i}"))
            .build()
            .expect("pool");
        let name = |t: usize| install(t, || std::thread::current().name().map(str::to_owned));
        let inside = mine.install(|| name(0)).expect("install");
        assert!(inside.is_some_and(|n| n.starts_with("mine-")));
        let sized = mine.install(|| name(2)).expect("install");
        assert!(sized.is_some_and(|n| n.starts_with("arca-")));
    }
}
