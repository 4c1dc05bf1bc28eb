//! The engine loop: admission, one batched forward pass per step, sampling and events.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::Instant;

use tokenizer::Tokenizer;

use super::grammar::{self, GrammarState};
use super::runner::{BatchRows, PrefixHit, Runner, SeqKv, StepOutput};
use super::sequence::{EmbedProgress, Embedding, Generation, RowOutput, Sequence, Work};
use super::stats::EngineStats;
use super::ticket::{CancelFlag, EmbedResult};
use super::types::{EngineConfig, Event, FinishReason, Request};
use super::Shared;

/// Rows of one step at most: the model's internal batch, which bounds its activations.
const MAX_STEP_ROWS: usize = model::MAX_BATCH;

/// What the handles send to the loop.
// One command per request goes through the channel: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Command {
    Generate {
        request: Request,
        events: tokio::sync::mpsc::UnboundedSender<Event>,
        cancel: CancelFlag,
        submitted: Instant,
        /// The request's grammar, compiled at submit.
        constraint: Option<Box<crate::constraint::Constraint>>,
    },
    Embed {
        inputs: Vec<Vec<u32>>,
        result: tokio::sync::oneshot::Sender<EmbedResult>,
        cancel: CancelFlag,
        submitted: Instant,
    },
    /// Admit nothing more; finish what runs until `until`, then cancel it.
    Shutdown { until: Instant },
}

/// A request waiting for admission.
struct Pending {
    command: Command,
    /// Positions it needs at most.
    positions: usize,
}

impl Pending {
    fn cancel_flag(&self) -> Option<&CancelFlag> {
        match &self.command {
            Command::Generate { cancel, .. } | Command::Embed { cancel, .. } => Some(cancel),
            Command::Shutdown { .. } => None,
        }
    }

    fn deadline(&self) -> Option<Instant> {
        match &self.command {
            Command::Generate { request, .. } => request.deadline,
            _ => None,
        }
    }
}

/// The loop's state; lives on its own thread.
pub(crate) struct EngineLoop {
    runner: Runner,
    tokenizer: Arc<Tokenizer>,
    config: EngineConfig,
    shared: Arc<Shared>,
    commands: mpsc::Receiver<Command>,
    waiting: VecDeque<Pending>,
    running: Vec<Sequence>,
    /// Blocks reserved by the running sequences.
    reserved_blocks: usize,
    /// Set once shutdown began: running sequences are cancelled at this instant.
    shutdown_until: Option<Instant>,
    stats: EngineStats,
    out: StepOutput,
    /// The id of the next request admitted.
    next_id: u64,
}

impl EngineLoop {
    pub fn new(
        runner: Runner,
        tokenizer: Arc<Tokenizer>,
        config: EngineConfig,
        shared: Arc<Shared>,
        commands: mpsc::Receiver<Command>,
    ) -> EngineLoop {
        let stats = EngineStats::new(
            runner.total_blocks(),
            config.kv_block_tokens,
            runner.block_bytes(),
        );
        EngineLoop {
            runner,
            tokenizer,
            config,
            shared,
            commands,
            waiting: VecDeque::new(),
            running: Vec::new(),
            reserved_blocks: 0,
            shutdown_until: None,
            stats,
            out: StepOutput::default(),
            next_id: 0,
        }
    }

    /// Runs until shutdown (or until every handle is gone) and nothing is left.
    pub fn run(mut self) {
        loop {
            self.receive();
            self.expire();
            self.admit();
            self.publish_stats();
            if self.running.is_empty() && self.waiting.is_empty() && self.shutdown_until.is_some() {
                break;
            }
            if !self.running.is_empty() {
                self.step();
                self.publish_stats();
            }
        }
        tracing::debug!("engine loop stopped");
    }

    /// Takes the commands sent since the last step; waits for one when idle.
    fn receive(&mut self) {
        let idle = self.running.is_empty() && self.waiting.is_empty();
        if idle && self.shutdown_until.is_none() {
            match self.commands.recv() {
                Ok(command) => self.take(command),
                // Every handle is gone: stop.
                Err(_) => self.begin_shutdown(Instant::now()),
            }
        }
        loop {
            match self.commands.try_recv() {
                Ok(command) => self.take(command),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    if self.shutdown_until.is_none() {
                        self.begin_shutdown(Instant::now());
                    }
                    break;
                }
            }
        }
    }

    fn take(&mut self, command: Command) {
        let positions = match &command {
            Command::Generate { request, .. } => request
                .prompt
                .len()
                .saturating_add(request.max_tokens)
                .min(self.config.n_ctx),
            Command::Embed { inputs, .. } => inputs.iter().map(Vec::len).max().unwrap_or(0),
            Command::Shutdown { until } => {
                self.begin_shutdown(*until);
                return;
            }
        };
        let pending = Pending { command, positions };
        if self.shutdown_until.is_some() {
            self.refuse(pending, "the model is shutting down; retry later");
        } else {
            self.waiting.push_back(pending);
        }
    }

    /// Refuses every waiting request; running ones go on until `until`.
    fn begin_shutdown(&mut self, until: Instant) {
        let until = self.shutdown_until.map_or(until, |u| u.min(until));
        self.shutdown_until = Some(until);
        for pending in std::mem::take(&mut self.waiting) {
            self.refuse(pending, "the model is shutting down; retry later");
        }
    }

    /// Ends a request that was never admitted.
    fn refuse(&mut self, pending: Pending, message: &str) {
        self.shared.queued.fetch_sub(1, Ordering::SeqCst);
        self.stats.requests_total += 1;
        match pending.command {
            Command::Generate { events, .. } => {
                let _ = events.send(Event::Error(message.to_string()));
            }
            Command::Embed { result, .. } => {
                let _ = result.send(Err(message.to_string()));
            }
            Command::Shutdown { .. } => {}
        }
    }

    /// Drops cancelled and expired requests, waiting or running, freeing their blocks.
    fn expire(&mut self) {
        let now = Instant::now();
        let mut kept = VecDeque::with_capacity(self.waiting.len());
        for pending in std::mem::take(&mut self.waiting) {
            if pending.cancel_flag().is_some_and(CancelFlag::is_cancelled) {
                self.end_waiting(pending, FinishReason::Cancelled, now);
            } else if pending.deadline().is_some_and(|d| now >= d) {
                self.end_waiting(pending, FinishReason::Deadline, now);
            } else {
                kept.push_back(pending);
            }
        }
        self.waiting = kept;
        let shutdown_passed = self.shutdown_until.is_some_and(|u| now >= u);
        let mut i = 0;
        while i < self.running.len() {
            let seq = &self.running[i];
            let reason = if seq.is_abandoned() || shutdown_passed {
                Some(FinishReason::Cancelled)
            } else if seq.deadline.is_some_and(|d| now >= d) {
                Some(FinishReason::Deadline)
            } else {
                None
            };
            match reason {
                Some(reason) => self.finish(i, reason),
                None => i += 1,
            }
        }
    }

    /// Ends a waiting request (cancelled, or its deadline passed) without a token.
    fn end_waiting(&mut self, pending: Pending, reason: FinishReason, now: Instant) {
        self.shared.queued.fetch_sub(1, Ordering::SeqCst);
        let mut seq = self.sequence(pending.command, now);
        seq.finish(reason, &mut self.stats);
    }

    /// Admits waiting requests in order while `max_running` and the KV blocks allow.
    /// With the prefix cache, a prompt starts on its longest cached prefix; one whose
    /// prefix a running sequence is about to cache waits for it.
    fn admit(&mut self) {
        while self.running.len() < self.config.max_running {
            let Some(pending) = self.waiting.front() else {
                break;
            };
            let mut hit = match &pending.command {
                Command::Generate { request, .. } if self.config.prefix_cache => {
                    let hit = self.runner.lookup(&request.prompt);
                    if self.should_wait_for_prefix(&hit) {
                        break;
                    }
                    Some((hit, request.prompt.len()))
                }
                _ => None,
            };
            let mut needed = self.runner.blocks_for(pending.positions);
            let free = self.runner.total_blocks() - self.reserved_blocks;
            if let Some((hit, prompt_len)) = hit.as_mut() {
                // A prompt whose cached prefix covers it whole writes into the last cached
                // block, which is copied first: one block more for that moment, or, where
                // that block is not free, one cached block less.
                if hit.blocks.len() * self.runner.block_tokens() >= *prompt_len {
                    if needed < free {
                        needed += 1;
                    } else {
                        hit.blocks.pop();
                    }
                }
            }
            if needed > free {
                if self.running.is_empty() {
                    // Cannot happen: submit refuses what the whole cache cannot hold.
                    let pending = self.waiting.pop_front().expect("front was Some");
                    self.refuse(pending, "the request does not fit in the KV cache");
                    continue;
                }
                break;
            }
            let pending = self.waiting.pop_front().expect("front was Some");
            self.shared.queued.fetch_sub(1, Ordering::SeqCst);
            let mut seq = self.sequence(pending.command, Instant::now());
            seq.reserved_blocks = needed;
            self.reserved_blocks += needed;
            if let Work::Generate(g) = &seq.work {
                if g.wants_nothing() {
                    self.running.push(seq);
                    self.finish(self.running.len() - 1, FinishReason::Length);
                    continue;
                }
            }
            let cached = hit.map_or(0, |(hit, _)| self.start_on_prefix(&mut seq, hit));
            tracing::debug!(
                request = seq.id,
                positions = pending.positions,
                blocks = needed,
                cached,
                "request admitted"
            );
            self.running.push(seq);
        }
    }

    /// Whether a running sequence is about to cache more of this prompt than the cache
    /// holds now (it registers one block per full block it evaluates).
    fn should_wait_for_prefix(&self, hit: &PrefixHit) -> bool {
        let next = hit.blocks.len();
        // Every full block of the prompt is cached already.
        let Some(&key) = hit.keys.get(next) else {
            return false;
        };
        self.running
            .iter()
            .any(|seq| seq.kv.will_register(next, key))
    }

    /// Starts a generation on the cached blocks of its prompt, leaving at least one
    /// prompt token to evaluate; returns the positions it starts with.
    fn start_on_prefix(&mut self, seq: &mut Sequence, hit: PrefixHit) -> usize {
        let Work::Generate(g) = &mut seq.work else {
            return 0;
        };
        let prompt_len = g.request.prompt.len();
        let len = (hit.blocks.len() * self.runner.block_tokens()).min(prompt_len.saturating_sub(1));
        let cached = self.runner.attach(&mut seq.kv, hit, len);
        g.skip_cached(cached);
        self.stats.prefix_cache_lookups_total += 1;
        if cached > 0 {
            self.stats.prefix_cache_hits_total += 1;
            self.stats.prompt_tokens_cached_total += cached as u64;
        }
        cached
    }

    /// The running state of a request.
    fn sequence(&mut self, command: Command, admitted: Instant) -> Sequence {
        let (work, cancel, deadline, submitted) = match command {
            Command::Generate {
                request,
                events,
                cancel,
                submitted,
                constraint,
            } => {
                let deadline = request.deadline;
                let grammar = constraint.map(|c| GrammarState::new(*c));
                let generation = Generation::new(request, events, submitted, grammar);
                (
                    Work::Generate(Box::new(generation)),
                    cancel,
                    deadline,
                    submitted,
                )
            }
            Command::Embed {
                inputs,
                result,
                cancel,
                submitted,
            } => {
                let embedding = Embedding::new(inputs, result);
                (Work::Embed(Box::new(embedding)), cancel, None, submitted)
            }
            Command::Shutdown { .. } => unreachable!("shutdown commands are never queued"),
        };
        self.next_id += 1;
        Sequence {
            id: self.next_id,
            work,
            kv: SeqKv::default(),
            reserved_blocks: 0,
            cancel,
            deadline,
            submitted,
            admitted: admitted.max(submitted),
        }
    }

    /// Ends running sequence `i` and frees its blocks.
    fn finish(&mut self, i: usize, reason: FinishReason) {
        let mut seq = self.running.remove(i);
        seq.finish(reason, &mut self.stats);
        self.release(&mut seq);
    }

    fn release(&mut self, seq: &mut Sequence) {
        self.runner.release(&mut seq.kv);
        self.reserved_blocks -= seq.reserved_blocks;
        seq.reserved_blocks = 0;
    }

    /// One forward pass: a decode row per generating sequence, prompt chunks for the
    /// others while the step has room.
    fn step(&mut self) {
        let mut budget = MAX_STEP_ROWS;
        let mut sizes = vec![0usize; self.running.len()];
        // Decode rows first: running streams never wait behind a prompt.
        for (size, seq) in sizes.iter_mut().zip(&self.running) {
            if !seq.is_prefilling() && budget > 0 {
                *size = 1;
                budget -= 1;
            }
        }
        for (size, seq) in sizes.iter_mut().zip(&self.running) {
            if seq.is_prefilling() {
                let n = seq
                    .next_input(self.config.prefill_chunk.min(budget))
                    .0
                    .len();
                *size = n;
                budget -= n;
            }
        }
        // Grammar hook: masks are computed while the forward pass runs.
        let mut grammars = grammar::take_for_step(&mut self.running, &sizes);
        let mut rows = Vec::with_capacity(self.running.len());
        let mut members = Vec::with_capacity(self.running.len());
        for (i, (seq, &size)) in self.running.iter_mut().zip(&sizes).enumerate() {
            if size == 0 {
                continue;
            }
            let Sequence { work, kv, .. } = seq;
            let (tokens, output) = work.next_input(size);
            if work.is_prefilling() {
                self.stats.prompt_tokens_total += tokens.len() as u64;
            }
            rows.push(BatchRows { tokens, kv, output });
            members.push((i, tokens.len(), output));
        }
        let (runner, out) = (&mut self.runner, &mut self.out);
        // A panic in the forward pass (a bug) fails this batch's requests, not the loop:
        // their blocks are given back below, and the pool's state is whole between steps.
        let result = grammar::alongside(&mut grammars, || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runner.step(&mut rows, out)))
        });
        drop(rows);
        grammar::put_back(&mut self.running, grammars);
        self.stats.steps_total += 1;
        let error = match result {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(error.to_string()),
            Err(_) => Some("internal error".to_string()),
        };
        if let Some(error) = error {
            let message = format!("the forward pass failed: {error}");
            tracing::error!(%message, "step failed");
            for &(i, ..) in members.iter().rev() {
                let mut seq = self.running.remove(i);
                seq.fail(message.clone(), &mut self.stats);
                self.release(&mut seq);
            }
            return;
        }
        if self.config.prefix_cache {
            self.register_blocks(&members);
        }
        self.after_step(&members);
    }

    /// Offers the blocks the step filled to the prefix cache.
    fn register_blocks(&mut self, members: &[(usize, usize, RowOutput)]) {
        for &(i, ..) in members {
            let seq = &mut self.running[i];
            if let Work::Generate(g) = &seq.work {
                self.runner.register(&mut seq.kv, g.tokens());
            }
        }
    }

    /// Samples, sends events and retires finished sequences after a step.
    fn after_step(&mut self, members: &[(usize, usize, RowOutput)]) {
        let (n_vocab, n_embd) = (self.runner.n_vocab(), self.runner.n_embd());
        let (mut logit_row, mut hidden_row) = (0, 0);
        let mut done: Vec<(usize, Result<FinishReason, String>)> = Vec::new();
        for &(i, n, output) in members {
            let seq = &mut self.running[i];
            match &mut seq.work {
                Work::Generate(g) => {
                    g.evaluated(n);
                    if output != RowOutput::LastLogits {
                        continue;
                    }
                    let at = logit_row * n_vocab;
                    logit_row += 1;
                    let logits = &self.out.logits[at..at + n_vocab];
                    match g.on_logits(logits, &self.tokenizer, self.config.n_ctx, &mut self.stats) {
                        Ok(Some(reason)) => done.push((i, Ok(reason))),
                        Ok(None) => {}
                        Err(message) => done.push((i, Err(message))),
                    }
                }
                Work::Embed(e) => {
                    let at = hidden_row * n_embd;
                    hidden_row += n;
                    let hidden = &self.out.hidden[at..at + n * n_embd];
                    match e.on_hidden(hidden, n_embd) {
                        EmbedProgress::Continue => {}
                        EmbedProgress::NextInput => self.runner.release(&mut seq.kv),
                        EmbedProgress::Done => done.push((i, Ok(FinishReason::Stop))),
                    }
                }
            }
        }
        // Highest index first, so removing leaves the lower indices in place.
        done.sort_by_key(|d| std::cmp::Reverse(d.0));
        for (i, result) in done {
            match result {
                Ok(reason) => self.finish(i, reason),
                Err(message) => {
                    let mut seq = self.running.remove(i);
                    seq.fail(message, &mut self.stats);
                    self.release(&mut seq);
                }
            }
        }
    }

    /// Copies the counters where [`super::Engine::stats`] reads them.
    fn publish_stats(&mut self) {
        self.stats.queue_depth = self.shared.queued.load(Ordering::SeqCst);
        self.stats.running = self.running.len();
        self.stats.kv_blocks_used = self.runner.used_blocks();
        self.stats.kv_blocks_cached = self.runner.cached_blocks();
        let mut shared = self.shared.stats.lock().unwrap_or_else(|e| e.into_inner());
        shared.clone_from(&self.stats);
    }
}
