//! The worker pools: one per thread count, made on first use and kept for the process, so a
//! program that compresses many small inputs (a daemon, a data pipeline, the streaming
//! [`Encoder`](crate::stream::Encoder)) does not start and stop threads on every call.

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
}
