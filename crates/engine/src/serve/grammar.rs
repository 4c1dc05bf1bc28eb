//! The grammar hook of the engine loop: a constrained sequence's next mask is computed on
//! a helper thread while the forward pass runs (the token it depends on was sampled in
//! the previous step), then applied to the logits before sampling.

use crate::constraint::{Constraint, ConstraintError, TokenMask};

use super::sequence::{RowOutput, Sequence, Work};

/// A constrained sequence's grammar state.
pub(crate) struct GrammarState {
    constraint: Constraint,
    /// The mask for the next sampling, once computed.
    next_mask: Option<Result<TokenMask, ConstraintError>>,
    /// The masked copy of the logits the sampler reads (the raw row stays intact for
    /// log-probabilities).
    masked: Vec<f32>, // [n_vocab]
}

impl GrammarState {
    /// The state at the start of the output.
    pub fn new(constraint: Constraint) -> GrammarState {
        GrammarState {
            constraint,
            next_mask: None,
            masked: Vec::new(),
        }
    }

    /// Computes the next mask unless it is already there.
    pub fn prepare(&mut self) {
        if self.next_mask.is_none() {
            self.next_mask = Some(self.constraint.compute_mask());
        }
    }

    /// `logits` with every token the grammar forbids at -inf.
    pub fn masked(
        &mut self,
        logits: &[f32], // [n_vocab]
    ) -> Result<&[f32], String> {
        let mask = match self.next_mask.take() {
            Some(mask) => mask,
            None => self.constraint.compute_mask(),
        }
        .map_err(|error| error.to_string())?;
        self.masked.clear();
        self.masked.extend_from_slice(logits);
        mask.apply(&mut self.masked);
        Ok(&self.masked)
    }

    /// Advances past the sampled token; says whether the grammar is complete and allows
    /// nothing more.
    pub fn advance(&mut self, token: u32) -> Result<bool, String> {
        self.next_mask = None;
        self.constraint
            .commit(token)
            .map_err(|error| error.to_string())?;
        Ok(self.constraint.is_finished())
    }
}

/// Takes the grammar states of the sequences that get logits this step (`sizes[i]` rows
/// for sequence `i`), so their masks can be computed during the forward pass.
pub(crate) fn take_for_step(
    running: &mut [Sequence],
    sizes: &[usize],
) -> Vec<(usize, Box<GrammarState>)> {
    let mut taken = Vec::new();
    for (i, (seq, &size)) in running.iter_mut().zip(sizes).enumerate() {
        if size == 0 || seq.next_input(size).1 != RowOutput::LastLogits {
            continue;
        }
        if let Work::Generate(g) = &mut seq.work {
            if let Some(state) = g.grammar.take() {
                taken.push((i, state));
            }
        }
    }
    taken
}

/// Gives the states back to their sequences.
pub(crate) fn put_back(running: &mut [Sequence], taken: Vec<(usize, Box<GrammarState>)>) {
    for (i, state) in taken {
        if let Some(Work::Generate(g)) = running.get_mut(i).map(|seq| &mut seq.work) {
            g.grammar = Some(state);
        }
    }
}

/// Runs `work` (the forward pass) on this thread while a scoped thread computes the
/// masks of `states`.
pub(crate) fn alongside<R>(
    states: &mut [(usize, Box<GrammarState>)],
    work: impl FnOnce() -> R,
) -> R {
    if states.is_empty() {
        return work();
    }
    std::thread::scope(|scope| {
        scope.spawn(|| states.iter_mut().for_each(|(_, state)| state.prepare()));
        work()
    })
}
