//! The KV cache of many sequences: one store of fixed-size blocks, each holding the keys
//! (after rope) and values of `block_tokens` positions for every layer, in f16 as
//! llama.cpp stores them; and a block table per sequence saying which blocks hold its
//! positions, in order.
//!
//! Blocks are taken from and given back to a free list in O(1), so a finished or
//! cancelled sequence frees its memory at once. Each block counts its owners, so that
//! sequences can share the blocks of a common prefix ([`KvPool::fork`]); a shared block
//! is copied before it is written ([`KvPool::reserve`]).
//!
//! Full blocks can also be registered in a prefix cache under a key chained from their
//! whole token prefix ([`prefix_key`]): a later sequence with the same prefix shares
//! them instead of evaluating it again ([`KvPool::cached_prefix`], [`KvPool::attach`]).
//! A registered block is never written (a sequence that would write it gets a copy).
//! When no sequence holds it any more it stays cached, and counts as free: it is evicted,
//! least recently released first, only when a block is needed and none is unused.
//!
//! The rows are kept as `u16` bit patterns so that a large store is allocated zeroed by
//! the allocator (lazily, page by page) instead of written out; they are viewed as `f16`.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};

use half::f16;

use crate::ModelError;

/// The positions of one sequence: which blocks of a [`KvPool`] hold them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockTable {
    /// Block ids, in position order: position `p` is in `blocks[p / block_tokens]`.
    blocks: Vec<u32>,
    /// Positions cached.
    len: usize,
}

impl BlockTable {
    /// An empty table.
    pub fn new() -> BlockTable {
        BlockTable::default()
    }

    /// Positions cached.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The blocks, in position order (some may be reserved beyond `len()`).
    pub fn blocks(&self) -> &[u32] {
        &self.blocks
    }

    /// Marks `n` more positions as cached after the forward pass wrote them.
    pub(crate) fn advance(&mut self, n: usize) {
        self.len += n;
    }

    /// Forgets the positions from `len` on, keeping every block.
    pub(crate) fn truncate_len(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
}

/// Blocks of keys and values for every layer, shared by many sequences.
#[derive(Debug, Clone)]
pub struct KvPool {
    /// Per layer, `[n_blocks * block_tokens, kv_dim]` keys, f16 bits.
    k: Vec<Vec<u16>>,
    /// Per layer, `[n_blocks * block_tokens, kv_dim]` values, f16 bits.
    v: Vec<Vec<u16>>,
    /// Values per cached position and layer (`n_kv_heads * head_dim`).
    kv_dim: usize,
    block_tokens: usize,
    /// Owners of each block; 0 for a free block.
    owners: Vec<u32>,
    /// Free blocks that cache nothing; the next one taken is the last.
    free: Vec<u32>,
    /// The prefix cache.
    cache: PrefixIndex,
}

/// The key of the empty prefix: the parent of a sequence's first block.
pub const ROOT_KEY: u64 = 0;

/// The key of a full block holding `tokens` after the prefix whose key is `parent`
/// ([`ROOT_KEY`] for a sequence's first block). Keys are only compared within one pool,
/// whose model and layout are fixed.
pub fn prefix_key(parent: u64, tokens: &[u32]) -> u64 {
    let mut hasher = DefaultHasher::new();
    parent.hash(&mut hasher);
    tokens.hash(&mut hasher);
    hasher.finish()
}

/// What a registered block caches; kept to check a key's match token by token.
#[derive(Debug, Clone)]
struct CachedBlock {
    key: u64,
    parent: u64,
    tokens: Vec<u32>,
    /// Where it is in [`PrefixIndex::idle`], while no sequence holds it.
    idle_since: Option<u64>,
}

/// Registered blocks by key, and those no sequence holds in the order they were released.
#[derive(Debug, Clone, Default)]
struct PrefixIndex {
    by_key: HashMap<u64, u32>,
    /// Per registered block, what it caches.
    blocks: HashMap<u32, CachedBlock>,
    /// Registered blocks no sequence holds, by release tick: evicted oldest first.
    idle: BTreeMap<u64, u32>,
    tick: u64,
}

impl KvPool {
    /// A store of `n_blocks` blocks of `block_tokens` positions for `n_layers` layers of
    /// `kv_dim` values. The memory is zeroed, which the allocator hands out lazily.
    pub(crate) fn new(
        n_layers: usize,
        kv_dim: usize,
        block_tokens: usize,
        n_blocks: usize,
    ) -> KvPool {
        let block_tokens = block_tokens.max(1);
        let size = n_blocks * block_tokens * kv_dim;
        // Ids fit u32: no machine holds 2^32 blocks of keys.
        let n_blocks = n_blocks.min(u32::MAX as usize);
        KvPool {
            k: (0..n_layers).map(|_| vec![0u16; size]).collect(),
            v: (0..n_layers).map(|_| vec![0u16; size]).collect(),
            kv_dim,
            block_tokens,
            owners: vec![0; n_blocks],
            free: (0..n_blocks as u32).rev().collect(),
            cache: PrefixIndex::default(),
        }
    }

    /// Positions per block.
    pub fn block_tokens(&self) -> usize {
        self.block_tokens
    }

    /// Blocks in the store.
    pub fn n_blocks(&self) -> usize {
        self.owners.len()
    }

    /// Blocks no sequence holds, cached ones included (they are evicted when needed).
    pub fn n_free(&self) -> usize {
        self.free.len() + self.cache.idle.len()
    }

    /// Blocks some sequence holds.
    pub fn n_used(&self) -> usize {
        self.n_blocks() - self.n_free()
    }

    /// Blocks no sequence holds that keep a cached prefix (counted in [`KvPool::n_free`]).
    pub fn n_cached(&self) -> usize {
        self.cache.idle.len()
    }

    /// Blocks registered in the prefix cache, held by sequences or not.
    pub fn n_registered(&self) -> usize {
        self.cache.blocks.len()
    }

    /// Blocks needed to hold `positions` positions.
    pub fn blocks_for(&self, positions: usize) -> usize {
        positions.div_ceil(self.block_tokens)
    }

    /// Bytes the store holds.
    pub fn size_bytes(&self) -> usize {
        2 * self.k.len() * self.n_blocks() * self.block_tokens * self.kv_dim * 2
    }

    /// Bytes one block holds (keys and values of every layer).
    pub fn block_bytes(&self) -> usize {
        2 * self.k.len() * self.block_tokens * self.kv_dim * 2
    }

    /// Values per position and layer.
    pub(crate) fn kv_dim(&self) -> usize {
        self.kv_dim
    }

    /// Layers the store was made for.
    pub(crate) fn n_layers(&self) -> usize {
        self.k.len()
    }

    /// Blocks [`KvPool::reserve`] would take to let `table` grow to `positions`
    /// positions (new blocks, and copies of shared blocks that would be written).
    pub fn blocks_needed(&self, table: &BlockTable, positions: usize) -> usize {
        if positions <= table.len {
            return 0;
        }
        let new = self
            .blocks_for(positions)
            .saturating_sub(table.blocks.len());
        let written = table.len / self.block_tokens..self.blocks_for(positions);
        let shared = table
            .blocks
            .get(written.start..written.end.min(table.blocks.len()))
            .unwrap_or_default()
            .iter()
            .filter(|&&b| self.is_shared(b))
            .count();
        new + shared
    }

    /// Makes room in `table` for positions up to `positions` (exclusive): takes new blocks,
    /// and gives the table its own copy of any shared or registered block those positions
    /// fall in.
    /// Nothing changes when the store has too few free blocks.
    pub fn reserve(&mut self, table: &mut BlockTable, positions: usize) -> Result<(), ModelError> {
        let needed = self.blocks_needed(table, positions);
        if needed > self.n_free() {
            return Err(ModelError::KvPoolFull {
                needed,
                free: self.n_free(),
                total: self.n_blocks(),
            });
        }
        let first_written = table.len / self.block_tokens;
        let last = self.blocks_for(positions).min(table.blocks.len());
        let written = if positions > table.len {
            first_written..last
        } else {
            0..0
        };
        for i in written {
            let block = table.blocks[i];
            if self.is_shared(block) {
                let copy = self.take().expect("free blocks were counted");
                self.copy_block(block, copy);
                self.unref(block);
                table.blocks[i] = copy;
            }
        }
        while table.blocks.len() < self.blocks_for(positions) {
            let block = self.take().expect("free blocks were counted");
            table.blocks.push(block);
        }
        Ok(())
    }

    /// Gives back every block of `table` (those it shares stay with their other owners;
    /// registered ones stay cached) and empties it. The last blocks go first, so that a
    /// cached prefix is evicted from its end.
    pub fn release(&mut self, table: &mut BlockTable) {
        for block in table.blocks.drain(..).rev() {
            self.unref(block);
        }
        table.len = 0;
    }

    /// Drops one owner of `block`; with none left it becomes free, or idle in the cache.
    fn unref(&mut self, block: u32) {
        let owners = &mut self.owners[block as usize];
        debug_assert!(*owners > 0, "block {block} released twice");
        *owners = owners.saturating_sub(1);
        if *owners > 0 {
            return;
        }
        let cache = &mut self.cache;
        match cache.blocks.get_mut(&block) {
            Some(cached) => {
                cache.tick += 1;
                cached.idle_since = Some(cache.tick);
                cache.idle.insert(cache.tick, block);
            }
            None => self.free.push(block),
        }
    }

    /// Whether writing `block` needs a copy first: another owner holds it, or it is
    /// registered in the prefix cache.
    fn is_shared(&self, block: u32) -> bool {
        self.owners[block as usize] > 1 || self.cache.blocks.contains_key(&block)
    }

    /// Registers `table`'s block `index`, which must be full and written, under `key`
    /// (its tokens `tokens` after the prefix keyed `parent`; see [`prefix_key`]). Returns
    /// false, changing nothing, when the key already has a block or this block is
    /// already registered (or `index` is outside the written positions).
    pub fn register(
        &mut self,
        table: &BlockTable,
        index: usize,
        parent: u64,
        key: u64,
        tokens: &[u32],
    ) -> bool {
        let written = (index + 1) * self.block_tokens <= table.len;
        let Some(&block) = table.blocks.get(index).filter(|_| written) else {
            return false;
        };
        let cache = &mut self.cache;
        if tokens.len() != self.block_tokens
            || cache.by_key.contains_key(&key)
            || cache.blocks.contains_key(&block)
        {
            return false;
        }
        cache.by_key.insert(key, block);
        cache.blocks.insert(
            block,
            CachedBlock {
                key,
                parent,
                tokens: tokens.to_vec(),
                idle_since: None,
            },
        );
        true
    }

    /// The cached blocks of the longest registered prefix of `tokens`, whose full blocks
    /// have the chained keys `keys` (see [`prefix_key`]), in order.
    pub fn cached_prefix(&self, keys: &[u64], tokens: &[u32]) -> Vec<u32> {
        let mut blocks = Vec::new();
        let mut parent = ROOT_KEY;
        for (&key, chunk) in keys.iter().zip(tokens.chunks_exact(self.block_tokens)) {
            let found = self.cache.by_key.get(&key).copied().filter(|block| {
                self.cache
                    .blocks
                    .get(block)
                    .is_some_and(|c| c.parent == parent && c.tokens == chunk)
            });
            match found {
                Some(block) => blocks.push(block),
                None => break,
            }
            parent = key;
        }
        blocks
    }

    /// Starts the empty `table` on `blocks` (from [`KvPool::cached_prefix`]), holding its
    /// first `len` positions (at most the blocks' positions): the table shares them, and
    /// gets a copy of the last one if it writes there.
    pub fn attach(&mut self, table: &mut BlockTable, blocks: &[u32], len: usize) {
        debug_assert!(table.blocks.is_empty(), "attach starts an empty table");
        for &block in blocks {
            if self.owners[block as usize] == 0 {
                if let Some(since) = self
                    .cache
                    .blocks
                    .get_mut(&block)
                    .and_then(|c| c.idle_since.take())
                {
                    self.cache.idle.remove(&since);
                }
            }
            self.owners[block as usize] += 1;
        }
        table.blocks.extend_from_slice(blocks);
        table.len = len.min(blocks.len() * self.block_tokens);
    }

    /// Keeps the first `n` positions of `table` (no-op when `n >= len()`) and gives back
    /// the blocks after them.
    pub fn truncate(&mut self, table: &mut BlockTable, n: usize) {
        table.len = table.len.min(n);
        let keep = self.blocks_for(table.len);
        let mut rest = BlockTable {
            blocks: table.blocks.split_off(keep.min(table.blocks.len())),
            len: 0,
        };
        self.release(&mut rest);
    }

    /// A table sharing `table`'s blocks and positions: the start of a sequence with the
    /// same prefix. Either may then grow; a shared block is copied before it is written.
    pub fn fork(&mut self, table: &BlockTable) -> BlockTable {
        for &block in &table.blocks {
            self.owners[block as usize] += 1;
        }
        table.clone()
    }

    /// Takes a free block, or else evicts the cached block released longest ago.
    fn take(&mut self) -> Option<u32> {
        let block = match self.free.pop() {
            Some(block) => block,
            None => {
                let (_, block) = self.cache.idle.pop_first()?;
                if let Some(cached) = self.cache.blocks.remove(&block) {
                    self.cache.by_key.remove(&cached.key);
                }
                block
            }
        };
        self.owners[block as usize] = 1;
        Some(block)
    }

    /// Copies every layer's keys and values of block `from` into block `to`.
    fn copy_block(&mut self, from: u32, to: u32) {
        let len = self.block_tokens * self.kv_dim;
        let (from, to) = (from as usize * len, to as usize * len);
        for layer in self.k.iter_mut().chain(self.v.iter_mut()) {
            layer.copy_within(from..from + len, to);
        }
    }

    /// Keys and values of layer `layer_idx`, `[n_blocks * block_tokens, kv_dim]` each.
    pub(crate) fn layer_mut(&mut self, layer_idx: usize) -> (&mut [f16], &mut [f16]) {
        (
            bytemuck::cast_slice_mut(&mut self.k[layer_idx]),
            bytemuck::cast_slice_mut(&mut self.v[layer_idx]),
        )
    }

    /// Where position `pos` of `table` starts in a layer's keys or values.
    pub(crate) fn row_start(&self, table: &BlockTable, pos: usize) -> usize {
        let block = table.blocks[pos / self.block_tokens] as usize;
        (block * self.block_tokens + pos % self.block_tokens) * self.kv_dim
    }
}

#[cfg(test)]
mod tests;
