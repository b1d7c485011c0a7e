//! Thread pools that survive `fork()`.
//!
//! Rayon's global pool deadlocks in a forked child (for example a PyTorch
//! DataLoader worker): its threads are gone but its registry believes they
//! exist. qfsel therefore keeps its own pools, keyed by process id and thread
//! count; a child process sees a different pid and builds fresh pools (the
//! parent's, unusable there, are leaked on purpose, never joined).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use rayon::ThreadPool;

struct Pools {
    pid: u32,
    by_threads: HashMap<usize, Arc<ThreadPool>>,
}

static POOLS: OnceLock<Mutex<Pools>> = OnceLock::new();

/// Number of threads used when the caller asks for 0 ("all cores").
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// A pool with `num_threads` threads (0 = one per core) for this process.
pub fn pool(num_threads: usize) -> Arc<ThreadPool> {
    let n = if num_threads == 0 {
        default_threads()
    } else {
        num_threads
    };
    let pid = std::process::id();
    let cell = POOLS.get_or_init(|| {
        Mutex::new(Pools {
            pid,
            by_threads: HashMap::new(),
        })
    });
    let mut guard = match cell.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    if guard.pid != pid {
        // Forked child: the parent's worker threads do not exist here.
        let stale = std::mem::take(&mut guard.by_threads);
        std::mem::forget(stale);
        guard.pid = pid;
    }
    guard
        .by_threads
        .entry(n)
        .or_insert_with(|| {
            Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|i| format!("qfsel-{i}"))
                    .build()
                    .expect("building a rayon thread pool"),
            )
        })
        .clone()
}

/// Run `f` inside a pool of `num_threads` threads (0 = one per core), so that
/// every rayon iterator in `f` uses exactly that many threads.
pub fn run<R: Send>(num_threads: usize, f: impl FnOnce() -> R + Send) -> R {
    pool(num_threads).install(f)
}
