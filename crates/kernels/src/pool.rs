//! The compute thread pool: a fixed set of threads that run one closure together.
//!
//! Decode runs a couple of hundred matmuls per token, so handing work to the threads
//! must take microseconds. The caller's thread works as thread 0 and wakes the others
//! by bumping a generation counter; idle workers spin on it for a short while before
//! they sleep on a condition variable, so back-to-back runs never wait for the OS
//! scheduler. A panic in any thread is caught there, all threads still finish, and the
//! panic resumes on the caller's thread.
//!
//! One closure runs at a time: concurrent callers take turns, and a closure that
//! calls [`run`] itself gets the nested call run inline on its own thread.

use std::any::Any;
use std::cell::Cell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long an idle worker spins before it sleeps. Long enough to bridge the gap
/// between the matmuls of one token, short enough not to burn a core between requests.
const SPIN_BEFORE_SLEEP: Duration = Duration::from_micros(500);
/// Spins between the caller's checks of the clock while it waits for the workers.
const SPINS_BEFORE_YIELD: u32 = 1 << 14;

/// A job as the workers see it: a closure of `(thread_idx, n_threads)`.
type Job<'a> = &'a (dyn Fn(usize, usize) + Sync);

thread_local! {
    /// Whether this thread is running a pool job (workers always; the caller during `run`).
    static IN_POOL: Cell<bool> = const { Cell::new(false) };
}

/// State shared by the caller and the workers.
struct Shared {
    n_threads: usize,
    /// Bumped once per job (and once for shutdown).
    generation: AtomicU64,
    /// Points at the caller's `Job` for the current generation.
    job: AtomicPtr<()>,
    /// Workers that have not finished the current job.
    remaining: AtomicUsize,
    shutdown: AtomicBool,
    /// Workers asleep (or about to sleep) on `wake`.
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
    /// The first panic payload of a worker in the current job.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

/// Running worker threads (`n_threads - 1` of them; the caller is thread 0).
struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

/// The requested thread count (0: all cores) and the pool, started on first use.
struct State {
    requested: usize,
    pool: Option<Pool>,
}

static STATE: Mutex<State> = Mutex::new(State {
    requested: 0,
    pool: None,
});

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic that unwound through a holder left no broken state: every run waits for
    // all threads before the panic resumes, so a poisoned lock is still usable.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Sets the number of compute threads (the caller's included); 0 means one per core,
/// the default. Call once at start: a change stops the running pool's threads and
/// starts new ones at the next run.
pub fn set_threads(n: usize) {
    let mut state = lock(&STATE);
    state.requested = n;
    let want = if n == 0 { default_threads() } else { n };
    if state
        .pool
        .as_ref()
        .is_some_and(|p| p.shared.n_threads != want)
    {
        state.pool = None;
    }
}

/// The number of threads [`run`] uses.
pub fn n_threads() -> usize {
    let state = lock(&STATE);
    match &state.pool {
        Some(pool) => pool.shared.n_threads,
        None if state.requested == 0 => default_threads(),
        None => state.requested,
    }
}

/// Runs `f(thread_idx, n_threads)` on every pool thread, `thread_idx` in
/// `0..n_threads`, and returns when all are done. A panic in any of them resumes here.
pub fn run<F: Fn(usize, usize) + Sync>(f: F) {
    if IN_POOL.get() {
        f(0, 1);
        return;
    }
    let mut state = lock(&STATE);
    let requested = state.requested;
    let pool = state.pool.get_or_insert_with(|| Pool::start(requested));
    let _in_pool = InPoolGuard::enter();
    if pool.shared.n_threads == 1 {
        f(0, 1);
    } else {
        pool.dispatch(&f);
    }
}

/// Marks the current thread as running a job until dropped (also on unwind).
struct InPoolGuard;

impl InPoolGuard {
    fn enter() -> InPoolGuard {
        IN_POOL.set(true);
        InPoolGuard
    }
}

impl Drop for InPoolGuard {
    fn drop(&mut self) {
        IN_POOL.set(false);
    }
}

impl Pool {
    /// Starts `requested` threads (0: one per core). Fewer start if the OS refuses.
    fn start(requested: usize) -> Pool {
        let n = if requested == 0 {
            default_threads()
        } else {
            requested
        };
        let shared = Arc::new(Shared {
            n_threads: n,
            generation: AtomicU64::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            remaining: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
            panic: Mutex::new(None),
        });
        let mut workers = Vec::with_capacity(n.saturating_sub(1));
        for idx in 1..n {
            let s = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name(format!("slm-compute-{idx}"))
                .spawn(move || worker(&s, idx));
            match spawned {
                Ok(handle) => workers.push(handle),
                Err(_) => break,
            }
        }
        if workers.len() + 1 != n {
            // Restart with as many threads as the OS allowed.
            let started = workers.len() + 1;
            let old = shared;
            old.shutdown.store(true, Ordering::SeqCst);
            Pool::wake_all(&old);
            for w in workers {
                let _ = w.join();
            }
            return Pool::start(started);
        }
        Pool { shared, workers }
    }

    fn wake_all(shared: &Shared) {
        shared.generation.fetch_add(1, Ordering::SeqCst);
        if shared.sleepers.load(Ordering::SeqCst) > 0 {
            let _guard = lock(&shared.lock);
            shared.wake.notify_all();
        }
    }

    /// Runs `f` on all threads; the caller is thread 0.
    fn dispatch(&self, f: Job<'_>) {
        let shared = &*self.shared;
        let n = shared.n_threads;
        shared.remaining.store(n - 1, Ordering::SeqCst);
        shared
            .job
            .store((&f as *const Job<'_>).cast_mut().cast(), Ordering::SeqCst);
        Pool::wake_all(shared);
        let own = catch_unwind(AssertUnwindSafe(|| f(0, n)));
        let mut spins = 0u32;
        while shared.remaining.load(Ordering::Acquire) != 0 {
            if spins < SPINS_BEFORE_YIELD {
                std::hint::spin_loop();
                spins += 1;
            } else {
                std::thread::yield_now();
            }
        }
        // Every worker is done with `f`; it may now go out of scope.
        if let Err(payload) = own {
            resume_unwind(payload);
        }
        if let Some(payload) = lock(&shared.panic).take() {
            resume_unwind(payload);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        Pool::wake_all(&self.shared);
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// Waits until `generation` moves past `seen`: spins first, then sleeps.
fn wait_for_generation(shared: &Shared, seen: u64) -> u64 {
    let start = Instant::now();
    let mut spins = 0u32;
    loop {
        let g = shared.generation.load(Ordering::Acquire);
        if g != seen {
            return g;
        }
        std::hint::spin_loop();
        spins = spins.wrapping_add(1);
        if spins & 255 == 0 && start.elapsed() > SPIN_BEFORE_SLEEP {
            break;
        }
    }
    // Announce the sleep before the last check: a caller that bumps the generation
    // after this check sees `sleepers > 0` and notifies under the lock.
    shared.sleepers.fetch_add(1, Ordering::SeqCst);
    let mut guard = lock(&shared.lock);
    let g = loop {
        let g = shared.generation.load(Ordering::SeqCst);
        if g != seen {
            break g;
        }
        guard = shared
            .wake
            .wait(guard)
            .unwrap_or_else(PoisonError::into_inner);
    };
    drop(guard);
    shared.sleepers.fetch_sub(1, Ordering::SeqCst);
    g
}

fn worker(shared: &Shared, idx: usize) {
    IN_POOL.set(true);
    let mut seen = 0u64;
    loop {
        seen = wait_for_generation(shared, seen);
        if shared.shutdown.load(Ordering::SeqCst) {
            return;
        }
        let job = shared
            .job
            .load(Ordering::Acquire)
            .cast_const()
            .cast::<Job<'static>>();
        // SAFETY: `dispatch` stored a pointer to its live `Job` before bumping the
        // generation we just saw, and it does not return (so the job and what it
        // borrows stay alive) until this worker decrements `remaining` below.
        let job: Job<'_> = unsafe { *job };
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| job(idx, shared.n_threads))) {
            let mut slot = lock(&shared.panic);
            if slot.is_none() {
                *slot = Some(payload);
            }
        }
        shared.remaining.fetch_sub(1, Ordering::Release);
    }
}
