//! The KV pool and the multi-sequence forward pass on tiny models: blocks come and go in
//! O(1), a sequence's results do not depend on what runs beside it, and a refused batch
//! changes nothing.

use model::{BatchOutput, BlockTable, KvPool, Logits, Model, ModelError, Output, SeqInput};

use crate::batch::{max_rel_diff, tokens};
use crate::tiny;

/// Faster kernels may sum a row in another order in a batch of many rows than alone.
const BATCH_TOL: f32 = 1e-4;

fn tiny_llama() -> Model {
    tiny::Tiny::new("llama", 2)
        .load()
        .expect("tiny llama loads")
}

#[test]
fn blocks_are_taken_freed_and_refused_when_none_are_left() {
    let model = tiny_llama();
    let mut pool = model.new_pool(16, 4);
    assert_eq!(
        (pool.n_blocks(), pool.n_free(), pool.block_tokens()),
        (4, 4, 16)
    );
    let mut a = BlockTable::new();
    pool.reserve(&mut a, 17).unwrap();
    assert_eq!((a.blocks().len(), pool.n_used()), (2, 2));
    let mut b = BlockTable::new();
    let err = pool.reserve(&mut b, 48).unwrap_err();
    assert!(matches!(
        err,
        ModelError::KvPoolFull {
            needed: 3,
            free: 2,
            total: 4
        }
    ));
    assert!(b.blocks().is_empty(), "a refused reserve takes nothing");
    pool.reserve(&mut b, 32).unwrap();
    assert_eq!(pool.n_free(), 0);
    pool.release(&mut a);
    assert_eq!((pool.n_free(), a.blocks().len(), a.len()), (2, 0, 0));
    pool.reserve(&mut a, 1).unwrap();
    pool.truncate(&mut b, 0);
    assert_eq!(pool.n_free(), 3);
}

/// Runs `seqs` (tokens, output) as one batch over fresh tables; returns the output.
fn run(model: &Model, pool: &mut KvPool, seqs: &[(&[u32], Output)]) -> BatchOutput {
    let mut tables: Vec<BlockTable> = seqs.iter().map(|_| BlockTable::new()).collect();
    let mut inputs: Vec<SeqInput> = seqs
        .iter()
        .zip(&mut tables)
        .map(|(&(tokens, output), kv)| SeqInput { tokens, kv, output })
        .collect();
    let mut out = BatchOutput::default();
    model.forward_batch(pool, &mut inputs, &mut out).unwrap();
    for table in &mut tables {
        pool.release(table);
    }
    out
}

#[test]
fn one_sequence_through_blocks_equals_the_contiguous_cache() {
    for (arch, model) in tiny::families() {
        let toks = tokens(40, 2);
        let mut cache = model.new_cache(64);
        let mut expected = Vec::new();
        model
            .forward(&toks, &mut cache, Logits::All, &mut expected)
            .unwrap();
        let mut pool = model.new_pool(16, 8);
        let out = run(&model, &mut pool, &[(&toks, Output::Logits(Logits::All))]);
        assert_eq!(out.logits, expected, "{arch}: blocks change the arithmetic");
        assert_eq!(pool.n_free(), 8);
    }
}

#[test]
fn a_sequence_gives_the_same_rows_alone_and_in_a_batch() {
    for (arch, model) in tiny::families() {
        let (n_vocab, n_embd) = (model.config().n_vocab, model.config().n_embd);
        let mut pool = model.new_pool(16, 32);
        let (a, b, c) = (tokens(23, 3), tokens(1, 4), tokens(9, 5));
        let seqs: [(&[u32], Output); 3] = [
            (&a, Output::Logits(Logits::Tail(2))),
            (&b, Output::Logits(Logits::Last)),
            (&c, Output::Hidden),
        ];
        let batch = run(&model, &mut pool, &seqs);
        assert_eq!(batch.logits.len(), 3 * n_vocab);
        assert_eq!(batch.hidden.len(), 9 * n_embd);
        let alone_a = run(&model, &mut pool, &seqs[..1]);
        let alone_b = run(&model, &mut pool, &seqs[1..2]);
        let alone_c = run(&model, &mut pool, &seqs[2..]);
        let d = max_rel_diff(&batch.logits[..2 * n_vocab], &alone_a.logits);
        assert!(d <= BATCH_TOL, "{arch}: first sequence differs by {d}");
        let d = max_rel_diff(&batch.logits[2 * n_vocab..], &alone_b.logits);
        assert!(d <= BATCH_TOL, "{arch}: second sequence differs by {d}");
        let d = max_rel_diff(&batch.hidden, &alone_c.hidden);
        assert!(d <= BATCH_TOL, "{arch}: hidden states differ by {d}");
        assert_eq!(pool.n_free(), 32);
    }
}

#[test]
fn decoding_many_sequences_together_equals_each_alone() {
    let model = tiny_llama();
    let mut pool = model.new_pool(16, 64);
    let prompts: Vec<Vec<u32>> = (0..4).map(|i| tokens(5 + 7 * i, i)).collect();
    // Each sequence alone, through a contiguous cache: prompt, then 5 greedy-like steps
    // feeding fixed tokens.
    let feed = |i: usize, step: usize| ((i * 11 + step * 3) % 50) as u32;
    let mut expected = Vec::new();
    for (i, prompt) in prompts.iter().enumerate() {
        let mut cache = model.new_cache(64);
        let mut out = Vec::new();
        model
            .forward(prompt, &mut cache, Logits::Last, &mut out)
            .unwrap();
        let mut rows = vec![out.clone()];
        for step in 0..5 {
            model
                .forward(&[feed(i, step)], &mut cache, Logits::Last, &mut out)
                .unwrap();
            rows.push(out.clone());
        }
        expected.push(rows);
    }
    // All four together: prefill in one batch, then one decode row each per step.
    let mut tables: Vec<BlockTable> = prompts.iter().map(|_| BlockTable::new()).collect();
    let n_vocab = model.config().n_vocab;
    let mut out = BatchOutput::default();
    for (step, want) in (0..6).map(|step| (step, expected.iter().map(move |rows| &rows[step]))) {
        let fed: Vec<[u32; 1]> = (0..4).map(|i| [feed(i, step.max(1) - 1)]).collect();
        let mut inputs: Vec<SeqInput> = tables
            .iter_mut()
            .enumerate()
            .map(|(i, kv)| SeqInput {
                tokens: if step == 0 { &prompts[i] } else { &fed[i] },
                kv,
                output: Output::Logits(Logits::Last),
            })
            .collect();
        model
            .forward_batch(&mut pool, &mut inputs, &mut out)
            .unwrap();
        for (i, (row, want)) in out.logits.chunks_exact(n_vocab).zip(want).enumerate() {
            let d = max_rel_diff(row, want);
            assert!(d <= BATCH_TOL, "sequence {i}, step {step}: differs by {d}");
        }
    }
    assert_eq!(tables[3].len(), prompts[3].len() + 5);
    for table in &mut tables {
        pool.release(table);
    }
    assert_eq!(pool.n_free(), 64);
}

#[test]
fn a_forked_prefix_is_copied_before_it_is_written() {
    let model = tiny_llama();
    let mut pool = model.new_pool(16, 8);
    let prefix = tokens(20, 6);
    let mut a = BlockTable::new();
    let mut out = BatchOutput::default();
    let logits = Output::Logits(Logits::Last);
    let mut inputs = [SeqInput {
        tokens: &prefix,
        kv: &mut a,
        output: logits,
    }];
    model
        .forward_batch(&mut pool, &mut inputs, &mut out)
        .unwrap();
    let mut b = pool.fork(&a);
    assert_eq!(pool.n_used(), 2, "forked blocks are shared");
    // Both go on differently; b's partly filled second block is copied first.
    let (next_a, next_b) = ([1u32], [2u32]);
    let mut inputs = [
        SeqInput {
            tokens: &next_a,
            kv: &mut a,
            output: logits,
        },
        SeqInput {
            tokens: &next_b,
            kv: &mut b,
            output: logits,
        },
    ];
    model
        .forward_batch(&mut pool, &mut inputs, &mut out)
        .unwrap();
    // The first writer got a copy of the shared second block; the second keeps it.
    assert_eq!(pool.n_used(), 3);
    assert_eq!(
        a.blocks()[0],
        b.blocks()[0],
        "the full first block stays shared"
    );
    assert_ne!(a.blocks()[1], b.blocks()[1]);
    let mut alone = model.new_cache(32);
    let mut expected = Vec::new();
    let mut whole = prefix.clone();
    whole.push(2);
    model
        .forward(&whole, &mut alone, Logits::Last, &mut expected)
        .unwrap();
    let n_vocab = model.config().n_vocab;
    let d = max_rel_diff(&out.logits[n_vocab..], &expected);
    assert!(d <= BATCH_TOL, "the fork's continuation differs by {d}");
    pool.release(&mut a);
    pool.release(&mut b);
    assert_eq!(pool.n_free(), 8);
}

#[test]
fn a_refused_batch_changes_nothing() {
    let model = tiny_llama();
    let mut pool = model.new_pool(16, 2);
    let (mut a, mut b) = (BlockTable::new(), BlockTable::new());
    let (long, short) = (tokens(20, 1), tokens(20, 2));
    let mut out = BatchOutput::default();
    let output = Output::Logits(Logits::Last);
    let mut inputs = [
        SeqInput {
            tokens: &long,
            kv: &mut a,
            output,
        },
        SeqInput {
            tokens: &short,
            kv: &mut b,
            output,
        },
    ];
    let err = model
        .forward_batch(&mut pool, &mut inputs, &mut out)
        .unwrap_err();
    assert!(
        matches!(err, ModelError::KvPoolFull { needed: 4, .. }),
        "{err}"
    );
    assert_eq!((a.len(), b.len(), pool.n_free()), (0, 0, 2));
    let too_many = vec![1u32; model::MAX_BATCH + 1];
    let mut inputs = [SeqInput {
        tokens: &too_many,
        kv: &mut a,
        output,
    }];
    let mut big = model.new_pool(16, 64);
    let err = model
        .forward_batch(&mut big, &mut inputs, &mut out)
        .unwrap_err();
    assert!(matches!(err, ModelError::BatchTooLarge { .. }), "{err}");
    let mut inputs = [SeqInput {
        tokens: &[50],
        kv: &mut a,
        output,
    }];
    let err = model
        .forward_batch(&mut pool, &mut inputs, &mut out)
        .unwrap_err();
    assert!(matches!(err, ModelError::TokenOutOfRange { .. }), "{err}");
    assert_eq!(pool.n_free(), 2);
}
