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
//! The rows are kept as `u16` bit patterns so that a large store is allocated zeroed by
//! the allocator (lazily, page by page) instead of written out; they are viewed as `f16`.

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
    /// Free blocks; the next one taken is the last.
    free: Vec<u32>,
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

    /// Blocks no sequence holds.
    pub fn n_free(&self) -> usize {
        self.free.len()
    }

    /// Blocks some sequence holds.
    pub fn n_used(&self) -> usize {
        self.n_blocks() - self.n_free()
    }

    /// Blocks needed to hold `positions` positions.
    pub fn blocks_for(&self, positions: usize) -> usize {
        positions.div_ceil(self.block_tokens)
    }

    /// Bytes the store holds.
    pub fn size_bytes(&self) -> usize {
        2 * self.k.len() * self.n_blocks() * self.block_tokens * self.kv_dim * 2
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
            .filter(|&&b| self.owners[b as usize] > 1)
            .count();
        new + shared
    }

    /// Makes room in `table` for positions up to `positions` (exclusive): takes new blocks,
    /// and gives the table its own copy of any shared block those positions fall in.
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
            if self.owners[block as usize] > 1 {
                let copy = self.take().expect("free blocks were counted");
                self.copy_block(block, copy);
                self.owners[block as usize] -= 1;
                table.blocks[i] = copy;
            }
        }
        while table.blocks.len() < self.blocks_for(positions) {
            let block = self.take().expect("free blocks were counted");
            table.blocks.push(block);
        }
        Ok(())
    }

    /// Gives back every block of `table` (those it shares stay with their other owners)
    /// and empties it.
    pub fn release(&mut self, table: &mut BlockTable) {
        for block in table.blocks.drain(..) {
            let owners = &mut self.owners[block as usize];
            debug_assert!(*owners > 0, "block {block} released twice");
            *owners = owners.saturating_sub(1);
            if *owners == 0 {
                self.free.push(block);
            }
        }
        table.len = 0;
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

    /// Takes a free block.
    fn take(&mut self) -> Option<u32> {
        let block = self.free.pop()?;
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
