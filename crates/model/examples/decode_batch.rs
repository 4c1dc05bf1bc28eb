//! Aggregate decode speed of a model with 1, 4 and 8 sequences in one batch:
//! `cargo run --release -p model --example decode_batch -- MODEL.gguf [STEPS [THREADS]]`.
//!
//! Each sequence gets a 32-token prompt, then every step decodes one token for each
//! sequence in one `forward_batch` call; the figure is tokens of all sequences per second.

use std::sync::Arc;
use std::time::Instant;

use model::{BatchOutput, BlockTable, Logits, Model, Output, SeqInput};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: decode_batch MODEL.gguf [STEPS [THREADS]]")?;
    let steps: usize = args.next().map_or(Ok(32), |s| s.parse())?;
    if let Some(threads) = args.next() {
        kernels::set_threads(threads.parse()?);
    }
    let file = Arc::new(gguf::GgufFile::open(&path)?);
    let model = Model::load(file)?;
    let n_vocab = model.config().n_vocab as u32;
    for n_seqs in [1usize, 4, 8] {
        let mut pool = model.new_pool(32, n_seqs * (32 + steps + 1).div_ceil(32) + n_seqs);
        let mut tables: Vec<BlockTable> = (0..n_seqs).map(|_| BlockTable::new()).collect();
        let prompts: Vec<Vec<u32>> = (0..n_seqs)
            .map(|s| {
                (0..32)
                    .map(|i| (100 + 37 * i + 1009 * s as u32) % n_vocab)
                    .collect()
            })
            .collect();
        let mut out = BatchOutput::default();
        let last = Output::Logits(Logits::Last);
        let mut inputs: Vec<SeqInput> = tables
            .iter_mut()
            .zip(&prompts)
            .map(|(kv, tokens)| SeqInput {
                tokens,
                kv,
                output: last,
            })
            .collect();
        model.forward_batch(&mut pool, &mut inputs, &mut out)?;
        let start = Instant::now();
        for step in 0..steps {
            let fed: Vec<[u32; 1]> = (0..n_seqs)
                .map(|s| [(7 * step as u32 + 13 * s as u32) % n_vocab])
                .collect();
            let mut inputs: Vec<SeqInput> = tables
                .iter_mut()
                .zip(&fed)
                .map(|(kv, tokens)| SeqInput {
                    tokens,
                    kv,
                    output: last,
                })
                .collect();
            model.forward_batch(&mut pool, &mut inputs, &mut out)?;
        }
        let seconds = start.elapsed().as_secs_f64();
        let tokens = n_seqs * steps;
        println!(
            "{n_seqs} sequences: {tokens} tokens in {seconds:.2} s, {:.1} tok/s aggregate, {:.1} tok/s per sequence",
            tokens as f64 / seconds,
            steps as f64 / seconds
        );
        // The same rows as one sequence's prompt chunks, for comparison: what the batch
        // would cost without per-sequence attention.
        let mut table = BlockTable::new();
        let mut pool = model.new_pool(32, (steps * n_seqs).div_ceil(32) + 1);
        let chunk: Vec<u32> = (0..n_seqs as u32).map(|i| 100 + i).collect();
        let start = Instant::now();
        for _ in 0..steps {
            let mut inputs = [SeqInput {
                tokens: &chunk,
                kv: &mut table,
                output: last,
            }];
            model.forward_batch(&mut pool, &mut inputs, &mut out)?;
        }
        let seconds = start.elapsed().as_secs_f64();
        println!(
            "  one sequence, chunks of {n_seqs}: {:.1} tok/s",
            tokens as f64 / seconds
        );
    }
    Ok(())
}
