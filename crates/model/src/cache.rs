//! The KV cache: keys (after rope) and values of every cached position, per layer, in f16
//! as llama.cpp stores them by default.
//!
//! The rows are kept as `u16` bit patterns so that a large cache is allocated zeroed by the
//! allocator (lazily, page by page) instead of written out; they are viewed as `f16`.

use half::f16;

/// Keys and values of one sequence's positions `0..len()`.
#[derive(Debug, Clone)]
pub struct KvCache {
    /// Per layer, `[capacity, kv_dim]` keys, f16 bits.
    k: Vec<Vec<u16>>,
    /// Per layer, `[capacity, kv_dim]` values, f16 bits.
    v: Vec<Vec<u16>>,
    /// Values per cached position and layer (`n_kv_heads * head_dim`).
    pub(crate) kv_dim: usize,
    len: usize,
    capacity: usize,
}

impl KvCache {
    /// An empty cache of `capacity` positions for `n_layers` layers of `kv_dim` values.
    /// The memory is zeroed, which the allocator hands out lazily.
    pub(crate) fn new(n_layers: usize, kv_dim: usize, capacity: usize) -> KvCache {
        let size = capacity * kv_dim;
        KvCache {
            k: (0..n_layers).map(|_| vec![0u16; size]).collect(),
            v: (0..n_layers).map(|_| vec![0u16; size]).collect(),
            kv_dim,
            len: 0,
            capacity,
        }
    }

    /// Cached positions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Positions the cache can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forgets every position.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Keeps the first `n` positions (no-op when `n >= len()`), so a sequence can go on
    /// from a shared prefix.
    pub fn truncate(&mut self, n: usize) {
        self.len = self.len.min(n);
    }

    /// Bytes the cache holds.
    pub fn size_bytes(&self) -> usize {
        2 * self.k.len() * self.capacity * self.kv_dim * std::mem::size_of::<f16>()
    }

    /// Keys and values of layer `layer_idx`, `[capacity, kv_dim]` each.
    pub(crate) fn layer_mut(&mut self, layer_idx: usize) -> (&mut [f16], &mut [f16]) {
        (
            bytemuck::cast_slice_mut(&mut self.k[layer_idx]),
            bytemuck::cast_slice_mut(&mut self.v[layer_idx]),
        )
    }

    /// Layers the cache was made for.
    pub(crate) fn n_layers(&self) -> usize {
        self.k.len()
    }

    /// Marks `n` more positions as cached after the forward pass wrote them.
    pub(crate) fn advance(&mut self, n: usize) {
        debug_assert!(self.len + n <= self.capacity);
        self.len += n;
    }
}
