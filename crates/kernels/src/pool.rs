//! The compute thread pool: a fixed set of threads that run one closure together.
//!
//! Decode runs a couple of hundred matmuls per token, so handing work to the threads
//! must take microseconds. The caller's thread works as thread 0 and wakes the others
//! by bumping a generation counter; idle workers spin on it for a short while before
//! they sleep on a condition variable, so back-to-back runs never wait for the OS
//! scheduler. A panic in any thread is caught there, all threads still finish, and the
//! panic resumes on the caller's thread.
//!
//! [`run`] gives every thread the closure with its index; [`for_each_chunk`] hands out
//! chunks of work to whichever threads come, which keeps a busy machine's late threads
//! from holding up the rest. One closure runs at a time: concurrent callers take turns, and a closure that
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

/// Bit of [`Shared::gate`] that closes the current job to workers not yet in it.
const GATE_CLOSED: u64 = 1 << 31;
/// Bits of [`Shared::gate`] that count the workers inside the current job.
const GATE_COUNT: u64 = GATE_CLOSED - 1;

/// State shared by the caller and the workers.
struct Shared {
    n_threads: usize,
    /// Bumped once per job (and once for shutdown).
    generation: AtomicU64,
    /// Points at the caller's `Job` for the current generation.
    job: AtomicPtr<()>,
    /// The low 32 bits of the job's generation (high half), [`GATE_CLOSED`], and the
    /// number of workers inside the job ([`GATE_COUNT`]). A worker enters only while
    /// the generation matches and the gate is open; the job stays alive while any
    /// worker is inside.
    gate: AtomicU64,
    /// Workers that finished the current job (counted for jobs every thread must run).
    done: AtomicUsize,
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

/// The thread count runs use, readable without the lock (0 until first known), so a
/// matmul can size its chunks while another caller's job holds the pool.
static N_THREADS: AtomicUsize = AtomicUsize::new(0);

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
///
/// # Panics
/// When called from inside a pool job (it would wait for itself).
pub fn set_threads(n: usize) {
    assert!(
        !IN_POOL.get(),
        "set_threads called from inside a compute pool job"
    );
    let mut state = lock(&STATE);
    state.requested = n;
    let want = if n == 0 { default_threads() } else { n };
    N_THREADS.store(want, Ordering::Relaxed);
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
    match N_THREADS.load(Ordering::Relaxed) {
        0 => {
            let state = lock(&STATE);
            let n = match &state.pool {
                Some(pool) => pool.shared.n_threads,
                None if state.requested == 0 => default_threads(),
                None => state.requested,
            };
            N_THREADS.store(n, Ordering::Relaxed);
            n
        }
        n => n,
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
        pool.dispatch(&f, true);
    }
}

/// Runs `f(chunk_idx)` once for every `chunk_idx` in `0..n_chunks`, spread over the
/// pool's threads, which claim chunks one at a time. Returns when all are done; a panic
/// in any of them resumes here. Unlike [`run`], a thread that starts late (busy
/// machine) only takes the chunks left, so the others never wait for it.
pub fn for_each_chunk<F: Fn(usize) + Sync>(n_chunks: usize, f: F) {
    let next = AtomicUsize::new(0);
    let claim = |_: usize, _: usize| loop {
        let chunk = next.fetch_add(1, Ordering::Relaxed);
        if chunk >= n_chunks {
            break;
        }
        f(chunk);
    };
    if n_chunks <= 1 || IN_POOL.get() {
        claim(0, 1);
        return;
    }
    let mut state = lock(&STATE);
    let requested = state.requested;
    let pool = state.pool.get_or_insert_with(|| Pool::start(requested));
    let _in_pool = InPoolGuard::enter();
    if pool.shared.n_threads == 1 {
        claim(0, 1);
    } else {
        pool.dispatch(&claim, false);
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
            gate: AtomicU64::new(0),
            done: AtomicUsize::new(0),
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
        N_THREADS.store(n, Ordering::Relaxed);
        Pool { shared, workers }
    }

    fn wake_all(shared: &Shared) {
        shared.generation.fetch_add(1, Ordering::SeqCst);
        if shared.sleepers.load(Ordering::SeqCst) > 0 {
            let _guard = lock(&shared.lock);
            shared.wake.notify_all();
        }
    }

    /// Runs `f` with the caller as thread 0. With `all_threads`, every worker runs it
    /// and the caller waits for all of them. Without, `f` must finish the whole job on
    /// its own whatever the number of threads taking part (claiming work from a shared
    /// counter): once the caller's `f` returns, workers that have not entered yet are
    /// shut out, so a worker the OS has not scheduled delays nobody.
    fn dispatch(&self, f: Job<'_>, all_threads: bool) {
        let shared = &*self.shared;
        let n = shared.n_threads;
        let generation = shared.generation.load(Ordering::SeqCst).wrapping_add(1);
        shared.done.store(0, Ordering::SeqCst);
        shared
            .gate
            .store((generation & 0xFFFF_FFFF) << 32, Ordering::SeqCst);
        shared
            .job
            .store((&f as *const Job<'_>).cast_mut().cast(), Ordering::SeqCst);
        Pool::wake_all(shared);
        let own = catch_unwind(AssertUnwindSafe(|| f(0, n)));
        if all_threads {
            spin_until(|| shared.done.load(Ordering::Acquire) == n - 1);
        } else {
            shared.gate.fetch_or(GATE_CLOSED, Ordering::SeqCst);
        }
        // Every worker leaves the gate after counting itself done; the next dispatch
        // overwrites the gate, so it must not start while a worker's decrement is still
        // to come (that decrement would land on the new gate and lock every worker out).
        spin_until(|| shared.gate.load(Ordering::Acquire) & GATE_COUNT == 0);
        // No worker is inside `f` and none can enter any more; it may go out of scope.
        if let Err(payload) = own {
            resume_unwind(payload);
        }
        if let Some(payload) = lock(&shared.panic).take() {
            resume_unwind(payload);
        }
    }
}

/// Spins (then yields) until `ready` holds.
fn spin_until(ready: impl Fn() -> bool) {
    let mut spins = 0u32;
    while !ready() {
        if spins < SPINS_BEFORE_YIELD {
            std::hint::spin_loop();
            spins += 1;
        } else {
            std::thread::yield_now();
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

/// Enters the job of `generation` unless it is closed or already replaced.
fn enter(shared: &Shared, generation: u64) -> bool {
    let tag = (generation & 0xFFFF_FFFF) << 32;
    let mut gate = shared.gate.load(Ordering::SeqCst);
    loop {
        if gate & !(GATE_CLOSED | GATE_COUNT) != tag || gate & GATE_CLOSED != 0 {
            return false;
        }
        match shared
            .gate
            .compare_exchange_weak(gate, gate + 1, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => return true,
            Err(now) => gate = now,
        }
    }
}

fn worker(shared: &Shared, idx: usize) {
    IN_POOL.set(true);
    let mut seen = 0u64;
    loop {
        seen = wait_for_generation(shared, seen);
        if shared.shutdown.load(Ordering::SeqCst) {
            return;
        }
        if !enter(shared, seen) {
            continue;
        }
        let job = shared
            .job
            .load(Ordering::SeqCst)
            .cast_const()
            .cast::<Job<'static>>();
        // SAFETY: we entered the gate of the generation whose job `dispatch` stored
        // before opening it, and `dispatch` does not return (so the job and what it
        // borrows stay alive) while the gate counts us, until the decrement below.
        let job: Job<'_> = unsafe { *job };
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| job(idx, shared.n_threads))) {
            let mut slot = lock(&shared.panic);
            if slot.is_none() {
                *slot = Some(payload);
            }
        }
        shared.done.fetch_add(1, Ordering::SeqCst);
        shared.gate.fetch_sub(1, Ordering::Release);
    }
}
