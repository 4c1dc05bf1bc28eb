//! The pool's block bookkeeping: sharing, copy on write and the prefix cache.

use super::{prefix_key, BlockTable, KvPool, ROOT_KEY};

/// A pool of `n_blocks` blocks of 4 positions, one layer of 2 values.
fn pool(n_blocks: usize) -> KvPool {
    KvPool::new(1, 2, 4, n_blocks)
}

/// Writes `n` positions into `table` as the forward pass would: reserve, then advance.
fn write(pool: &mut KvPool, table: &mut BlockTable, n: usize) {
    let positions = table.len() + n;
    pool.reserve(table, positions).expect("room");
    let start = table.len();
    for pos in start..positions {
        let at = pool.row_start(table, pos);
        let (k, _) = pool.layer_mut(0);
        k[at] = half::f16::from_f32(pos as f32);
    }
    table.advance(n);
}

/// The chained keys of the full blocks of `tokens`.
fn keys(tokens: &[u32]) -> Vec<u64> {
    let mut parent = ROOT_KEY;
    tokens
        .chunks_exact(4)
        .map(|chunk| {
            parent = prefix_key(parent, chunk);
            parent
        })
        .collect()
}

/// Registers every full block of `table`, which holds `tokens`.
fn register_all(pool: &mut KvPool, table: &BlockTable, tokens: &[u32]) {
    let mut parent = ROOT_KEY;
    for (i, (&key, chunk)) in keys(tokens).iter().zip(tokens.chunks_exact(4)).enumerate() {
        pool.register(table, i, parent, key, chunk);
        parent = key;
    }
}

#[test]
fn released_registered_blocks_stay_cached_and_count_as_free() {
    let mut pool = pool(4);
    let tokens: Vec<u32> = (0..10).collect();
    let mut table = BlockTable::new();
    write(&mut pool, &mut table, 10);
    register_all(&mut pool, &table, &tokens);
    assert_eq!(pool.n_registered(), 2);
    pool.release(&mut table);
    assert_eq!((pool.n_used(), pool.n_free(), pool.n_cached()), (0, 4, 2));

    let cached = pool.cached_prefix(&keys(&tokens), &tokens);
    assert_eq!(cached.len(), 2);
    let mut other = BlockTable::new();
    pool.attach(&mut other, &cached, 8);
    assert_eq!((pool.n_used(), pool.n_cached(), other.len()), (2, 0, 8));
    // Another prefix diverges after the first block.
    let mut diverging = tokens.clone();
    diverging[5] = 99;
    assert_eq!(pool.cached_prefix(&keys(&diverging), &diverging).len(), 1);
}

#[test]
fn a_registered_block_is_copied_before_it_is_written() {
    let mut pool = pool(4);
    let tokens: Vec<u32> = (0..8).collect();
    let mut table = BlockTable::new();
    write(&mut pool, &mut table, 8);
    register_all(&mut pool, &table, &tokens);
    pool.release(&mut table);
    let cached = pool.cached_prefix(&keys(&tokens), &tokens);
    let mut again = BlockTable::new();
    // Keep one position to evaluate: the last block is written, so it is copied.
    pool.attach(&mut again, &cached, 7);
    assert_eq!(pool.blocks_needed(&again, 8), 1);
    write(&mut pool, &mut again, 1);
    assert_eq!(again.blocks()[0], cached[0]);
    assert_ne!(again.blocks()[1], cached[1]);
    // The original stays cached, unheld.
    assert_eq!((pool.n_used(), pool.n_cached()), (2, 1));
    assert_eq!(pool.cached_prefix(&keys(&tokens), &tokens), cached);
}

#[test]
fn cached_blocks_are_evicted_last_released_first_only_when_needed() {
    let mut pool = pool(4);
    let tokens: Vec<u32> = (0..12).collect();
    let mut table = BlockTable::new();
    write(&mut pool, &mut table, 12);
    register_all(&mut pool, &table, &tokens);
    pool.release(&mut table);
    assert_eq!(pool.n_cached(), 3);
    // Two new blocks: the free one, then the end of the cached prefix.
    let mut other = BlockTable::new();
    write(&mut pool, &mut other, 8);
    assert_eq!(pool.n_cached(), 2);
    assert_eq!(pool.cached_prefix(&keys(&tokens), &tokens).len(), 2);
    write(&mut pool, &mut other, 8);
    assert_eq!((pool.n_cached(), pool.n_free()), (0, 0));
    assert!(pool.cached_prefix(&keys(&tokens), &tokens).is_empty());
    pool.release(&mut other);
    assert_eq!(pool.n_free(), 4);
}

#[test]
fn registering_needs_a_full_written_block_and_a_new_key() {
    let mut pool = pool(4);
    let tokens: Vec<u32> = (0..6).collect();
    let mut table = BlockTable::new();
    write(&mut pool, &mut table, 6);
    let key = prefix_key(ROOT_KEY, &tokens[..4]);
    assert!(!pool.register(&table, 1, key, 7, &tokens[4..6]));
    assert!(pool.register(&table, 0, ROOT_KEY, key, &tokens[..4]));
    assert!(!pool.register(&table, 0, ROOT_KEY, key, &tokens[..4]));
    let mut twin = BlockTable::new();
    write(&mut pool, &mut twin, 4);
    assert!(!pool.register(&twin, 0, ROOT_KEY, key, &tokens[..4]));
    pool.release(&mut twin);
    assert_eq!(pool.n_cached(), 0);
}
