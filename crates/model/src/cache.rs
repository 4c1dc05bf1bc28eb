//! The KV cache of one sequence: a [`KvPool`] of one block that spans the whole context,
//! so its layout is one contiguous run of positions per layer.

use crate::kv_pool::{BlockTable, KvPool};

/// Keys and values of one sequence's positions `0..len()`.
#[derive(Debug, Clone)]
pub struct KvCache {
    pub(crate) pool: KvPool,
    pub(crate) table: BlockTable,
    capacity: usize,
}

impl KvCache {
    /// An empty cache of `capacity` positions for `n_layers` layers of `kv_dim` values.
    /// The memory is zeroed, which the allocator hands out lazily.
    pub(crate) fn new(n_layers: usize, kv_dim: usize, capacity: usize) -> KvCache {
        let mut pool = KvPool::new(n_layers, kv_dim, capacity.max(1), 1);
        let mut table = BlockTable::new();
        pool.reserve(&mut table, capacity)
            .expect("a one-block pool holds its whole capacity");
        KvCache {
            pool,
            table,
            capacity,
        }
    }

    /// Cached positions.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Positions the cache can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forgets every position.
    pub fn clear(&mut self) {
        self.truncate(0);
    }

    /// Keeps the first `n` positions (no-op when `n >= len()`), so a sequence can go on
    /// from a shared prefix.
    pub fn truncate(&mut self, n: usize) {
        // The one block stays: it is the whole cache.
        let len = self.table.len().min(n);
        self.table.truncate_len(len);
    }

    /// Bytes the cache holds.
    pub fn size_bytes(&self) -> usize {
        self.pool.size_bytes()
    }
}
