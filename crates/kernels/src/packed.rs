//! Weights repacked once at load into row-interleaved blocks, and the matrix products
//! over them.
//!
//! A [`PackedMatrix`] keeps [`GROUP`] rows side by side: for every block of columns, the
//! integer codes of the group's 16 rows are stored so that one 64-byte line holds four
//! consecutive values of each row (`[row][4]`), which is exactly what one byte-dot
//! instruction (`vpdpbusd` on 16 lanes, or `vpmaddubsw` + `vpmaddwd` on two 8-lane
//! halves) consumes: its 16 lanes are the 16 rows, the 4 activation bytes are broadcast.
//! A group's scales follow its codes. The same layout serves one token (decode: every
//! weight byte read once, no horizontal sums, no per-block shuffles) and many (prefill:
//! a block's codes are unpacked once into registers and reused for a tile of tokens).
//!
//! Codes are unsigned (`0..=15`, `0..=31`, `0..=63`, or a signed byte plus 128), so the
//! integer dot product of a block is the codes' dot product minus the format's offset
//! times the block's activation sum: the same integer ggml computes, exactly. Per
//! (row, token) the blocks are then accumulated in one fixed order by every instruction
//! set ([`reference`] spells it out), so the scalar, AVX2 and AVX-512 kernels give
//! identical results, and a row's result does not depend on how many tokens share
//! the call: prefill and decode, one sequence or a batch, agree bit for bit.

mod pack;
pub(crate) mod reference;
#[cfg(test)]
mod tests;

use crate::{DType, QK_K};

pub use pack::pack;

/// Version of the packed layout; caches of another version are not read.
pub const LAYOUT_VERSION: u32 = 1;

/// Rows interleaved in one group.
pub const GROUP: usize = 16;
/// Tokens one kernel call handles at most.
pub const MAX_TOKENS: usize = 8;

/// The weight formats that have a packed layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PackedFormat {
    /// From Q4_0: 4-bit codes, offset 8, a scale per 32 values.
    Q4_0,
    /// From Q4_1: 4-bit codes, a scale and a minimum per 32 values.
    Q4_1,
    /// From Q5_0: 5-bit codes (4 bits plus a bit plane), offset 16.
    Q5_0,
    /// From Q5_1: 5-bit codes, a scale and a minimum per 32 values.
    Q5_1,
    /// From Q8_0: bytes plus 128, offset 128.
    Q8_0,
    /// From Q4_K: 4-bit codes, 6-bit scales and minimums per 32 values, two f16 per 256.
    Q4K,
    /// From Q6_K: 6-bit codes (4 bits plus a 2-bit plane), offset 32, signed 8-bit scales
    /// per 16 values, an f16 per 256.
    Q6K,
}

impl PackedFormat {
    /// Every packed format.
    pub const ALL: [PackedFormat; 7] = [
        PackedFormat::Q4_0,
        PackedFormat::Q4_1,
        PackedFormat::Q5_0,
        PackedFormat::Q5_1,
        PackedFormat::Q8_0,
        PackedFormat::Q4K,
        PackedFormat::Q6K,
    ];

    /// The packed format of weights of type `dtype`, if there is one.
    pub fn for_dtype(dtype: DType) -> Option<PackedFormat> {
        Some(match dtype {
            DType::Q4_0 => PackedFormat::Q4_0,
            DType::Q4_1 => PackedFormat::Q4_1,
            DType::Q5_0 => PackedFormat::Q5_0,
            DType::Q5_1 => PackedFormat::Q5_1,
            DType::Q8_0 => PackedFormat::Q8_0,
            DType::Q4_K => PackedFormat::Q4K,
            DType::Q6_K => PackedFormat::Q6K,
            _ => return None,
        })
    }

    /// A stable number for files that store packed matrices.
    pub fn id(self) -> u32 {
        PackedFormat::ALL
            .iter()
            .position(|f| *f == self)
            .expect("every format is in ALL") as u32
    }

    /// The format numbered `id` by [`PackedFormat::id`].
    pub fn from_id(id: u32) -> Option<PackedFormat> {
        PackedFormat::ALL.get(usize::try_from(id).ok()?).copied()
    }

    /// The weight type this format is packed from.
    pub const fn dtype(self) -> DType {
        match self {
            PackedFormat::Q4_0 => DType::Q4_0,
            PackedFormat::Q4_1 => DType::Q4_1,
            PackedFormat::Q5_0 => DType::Q5_0,
            PackedFormat::Q5_1 => DType::Q5_1,
            PackedFormat::Q8_0 => DType::Q8_0,
            PackedFormat::Q4K => DType::Q4_K,
            PackedFormat::Q6K => DType::Q6_K,
        }
    }

    /// Values per block (the unit a group's bytes repeat in).
    pub const fn block_values(self) -> usize {
        match self {
            PackedFormat::Q4K | PackedFormat::Q6K => QK_K,
            _ => 32,
        }
    }

    /// Bytes of one block of a whole group (16 rows): the same as 16 source blocks,
    /// except Q4_K, whose scales are kept unpacked (148 instead of 144 bytes a row).
    pub const fn group_block_bytes(self) -> usize {
        match self {
            PackedFormat::Q4_0 => layout::Q4_0_BYTES,
            PackedFormat::Q4_1 => layout::Q4_1_BYTES,
            PackedFormat::Q5_0 => layout::Q5_0_BYTES,
            PackedFormat::Q5_1 => layout::Q5_1_BYTES,
            PackedFormat::Q8_0 => layout::Q8_0_BYTES,
            PackedFormat::Q4K => layout::Q4K_BYTES,
            PackedFormat::Q6K => layout::Q6K_BYTES,
        }
    }

    /// The activation type: Q8_0, Q8_1 or Q8_K, as ggml pairs them.
    pub const fn act_type(self) -> DType {
        self.dtype().vec_dot_type()
    }
}

/// Byte offsets inside one block of a group. Codes come first, in 64-byte lines of
/// `[16 rows][4 values]`; 4-bit codes hold two lines per byte (line `p` in the low
/// nibbles, line `p + 4` in the high ones); bit planes are `u64` masks (bit `4 * row + j`),
/// 2-bit planes hold four lines per byte (line `4 * h + s` in bits `2s..2s+2`); f16
/// scales are `[16]`.
pub(crate) mod layout {
    /// Q4_0: nibbles (4 lines of 64), d.
    pub const Q4_0_D: usize = 256;
    pub const Q4_0_BYTES: usize = 288;
    /// Q4_1: nibbles, d, m.
    pub const Q4_1_D: usize = 256;
    pub const Q4_1_M: usize = 288;
    pub const Q4_1_BYTES: usize = 320;
    /// Q5_0: nibbles, fifth-bit masks (8 × u64), d.
    pub const Q5_0_QH: usize = 256;
    pub const Q5_0_D: usize = 320;
    pub const Q5_0_BYTES: usize = 352;
    /// Q5_1: nibbles, masks, d, m.
    pub const Q5_1_QH: usize = 256;
    pub const Q5_1_D: usize = 320;
    pub const Q5_1_M: usize = 352;
    pub const Q5_1_BYTES: usize = 384;
    /// Q8_0: 8 lines of biased bytes, d.
    pub const Q8_0_D: usize = 512;
    pub const Q8_0_BYTES: usize = 544;
    /// Q4_K: 8 sub-blocks of nibbles (256 each), scales `[8][16]` u8, mins `[8][16]` u8,
    /// d, dmin.
    pub const Q4K_SUB: usize = 256;
    pub const Q4K_SC: usize = 2048;
    pub const Q4K_MIN: usize = 2176;
    pub const Q4K_D: usize = 2304;
    pub const Q4K_DMIN: usize = 2336;
    pub const Q4K_BYTES: usize = 2368;
    /// Q6_K: 8 chunks of 32 values (nibbles 256 + two 2-bit planes of 64), scales
    /// `[16][16]` i8, d.
    pub const Q6K_CHUNK: usize = 384;
    pub const Q6K_HI: usize = 256;
    pub const Q6K_SC: usize = 3072;
    pub const Q6K_D: usize = 3328;
    pub const Q6K_BYTES: usize = 3360;
}

/// A weight matrix repacked into groups of [`GROUP`] rows (the last group padded with
/// zero rows).
#[derive(Debug)]
pub struct PackedMatrix {
    format: PackedFormat,
    n_rows: usize,
    n_cols: usize,
    buf: Buffer,
    /// Where the 64-byte aligned data starts in `buf`.
    offset: usize,
}

/// Zeroed memory for packed weights. Large matrices get an anonymous mapping with
/// transparent huge pages requested, which makes filling them fault 512 times less.
#[derive(Debug)]
enum Buffer {
    Heap(Vec<u8>),
    Map(memmap2::MmapMut),
    /// Bytes owned elsewhere (a mapped cache file), read-only.
    Shared(std::sync::Arc<dyn SharedBytes>),
}

/// Read-only bytes that packed matrices can borrow from, e.g. a mapped cache file.
pub trait SharedBytes: AsRef<[u8]> + Send + Sync + std::fmt::Debug {}

impl<T: AsRef<[u8]> + Send + Sync + std::fmt::Debug> SharedBytes for T {}

/// Matrices at least this large are mapped with huge pages.
const HUGE_PAGE_MIN: usize = 4 << 20;

impl Buffer {
    fn zeroed(len: usize) -> Buffer {
        if len >= HUGE_PAGE_MIN {
            if let Ok(map) = memmap2::MmapMut::map_anon(len) {
                #[cfg(target_os = "linux")]
                let _ = map.advise(memmap2::Advice::HugePage);
                return Buffer::Map(map);
            }
        }
        Buffer::Heap(vec![0u8; len + 64])
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Buffer::Heap(v) => v,
            Buffer::Map(m) => m,
            Buffer::Shared(s) => (**s).as_ref(),
        }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        match self {
            Buffer::Heap(v) => v,
            Buffer::Map(m) => m,
            Buffer::Shared(_) => &mut [],
        }
    }
}

impl PackedMatrix {
    /// An all-zero matrix of this shape, to be filled by packing.
    pub(crate) fn zeroed(format: PackedFormat, n_rows: usize, n_cols: usize) -> PackedMatrix {
        let len =
            n_rows.div_ceil(GROUP) * (n_cols / format.block_values()) * format.group_block_bytes();
        let buf = Buffer::zeroed(len);
        let offset = buf.bytes().as_ptr().align_offset(64).min(64);
        PackedMatrix {
            format,
            n_rows,
            n_cols,
            buf,
            offset,
        }
    }

    /// A matrix whose packed bytes are `bytes[start..start + len]` of shared memory
    /// (written earlier from [`PackedMatrix::data`]), or `None` when they do not fit the
    /// shape or do not start on 64 bytes.
    pub fn from_shared(
        format: PackedFormat,
        n_rows: usize,
        n_cols: usize,
        bytes: std::sync::Arc<dyn SharedBytes>,
        start: usize,
    ) -> Option<PackedMatrix> {
        let bv = format.block_values();
        if n_cols == 0 || !n_cols.is_multiple_of(bv) {
            return None;
        }
        let len = n_rows
            .div_ceil(GROUP)
            .checked_mul(n_cols / bv)?
            .checked_mul(format.group_block_bytes())?;
        let all = (*bytes).as_ref();
        let end = start.checked_add(len)?;
        if end > all.len() || !(all.as_ptr() as usize + start).is_multiple_of(64) {
            return None;
        }
        Some(PackedMatrix {
            format,
            n_rows,
            n_cols,
            buf: Buffer::Shared(bytes),
            offset: start,
        })
    }

    /// The layout.
    pub fn format(&self) -> PackedFormat {
        self.format
    }

    /// Output features.
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    /// Input features.
    pub fn n_cols(&self) -> usize {
        self.n_cols
    }

    /// Groups of [`GROUP`] rows.
    pub fn n_groups(&self) -> usize {
        self.n_rows.div_ceil(GROUP)
    }

    /// Blocks per row.
    pub fn n_blocks(&self) -> usize {
        self.n_cols / self.format.block_values()
    }

    /// Bytes of one group (all its blocks).
    pub fn group_bytes(&self) -> usize {
        self.n_blocks() * self.format.group_block_bytes()
    }

    /// Bytes the packed copy holds.
    pub fn size_bytes(&self) -> usize {
        self.n_groups() * self.group_bytes()
    }

    /// The packed bytes.
    pub fn data(&self) -> &[u8] {
        &self.buf.bytes()[self.offset..self.offset + self.size_bytes()]
    }

    pub(crate) fn data_mut(&mut self) -> &mut [u8] {
        let len = self.size_bytes();
        &mut self.buf.bytes_mut()[self.offset..self.offset + len]
    }

    /// The bytes of group `g`.
    pub fn group(&self, g: usize) -> &[u8] {
        let len = self.group_bytes();
        &self.data()[g * len..(g + 1) * len]
    }
}

/// Quantized activations of a tile of tokens, split into the arrays the kernels read.
#[derive(Debug, Default, Clone)]
pub struct PackedActs {
    /// `[n_tokens, n_cols]` quantized values.
    pub qs: Vec<i8>,
    /// `[n_tokens, n_cols / scale_block]` scales: one per 32 values (Q8_0, Q8_1) or per
    /// 256 (Q8_K).
    pub d: Vec<f32>,
    /// `[n_tokens, n_cols / sum_block]` sums of the quantized values: per 32 (Q8_0) or
    /// per 16 (Q8_K); empty for Q8_1.
    pub sums: Vec<i32>,
    /// `[n_tokens, n_cols / 4]` sums of each 4 quantized values (Q8_0 only), for the
    /// lane order ([`reference`]).
    pub sums4: Vec<i32>,
    /// `[n_tokens, n_cols / 32]` Q8_1's `s` (`d * sum`, rounded to f16 as ggml keeps it);
    /// empty otherwise.
    pub s: Vec<f32>,
    /// Values per token.
    pub n_cols: usize,
    /// Tokens held.
    pub n_tokens: usize,
}

impl PackedActs {
    /// Scales per token.
    pub fn d_per_token(&self) -> usize {
        self.d.len() / self.n_tokens.max(1)
    }

    /// Sums per token.
    pub fn sums_per_token(&self) -> usize {
        self.sums.len() / self.n_tokens.max(1)
    }

    /// `s` values per token.
    pub fn s_per_token(&self) -> usize {
        self.s.len() / self.n_tokens.max(1)
    }
}

/// Tokens one lane-order kernel call handles at most.
pub const MAX_LANE_TOKENS: usize = 2;

/// Whether a call with `n_tokens` tokens over `format` sums in ggml's lane order (see
/// [`reference`]) rather than block by block. Q4_1 and Q5_1 do: their weights are
/// `d·q + m`, and the two sums (of `d·q·x` and of `m·s`) nearly cancel, so their rounding
/// shows; llama.cpp takes these formats through its dot products in prompts and
/// decoding alike, and following its order keeps slm's results closest to it. The other
/// formats sum whole blocks, which is cheaper. Either way a format has one order for
/// every batch size (`n_tokens` is kept for callers that might want otherwise).
pub fn uses_lanes(format: PackedFormat, n_tokens: usize) -> bool {
    let _ = n_tokens;
    matches!(format, PackedFormat::Q4_1 | PackedFormat::Q5_1)
}

/// Packed-weight matrix product of one group of rows with up to [`MAX_TOKENS`] tokens:
/// `out[t][r] = dot(row r of the group, token t0 + t)` for `t < n_tokens`.
pub type PackedGemmFn = fn(
    format: PackedFormat,
    group: &[u8],
    acts: &PackedActs,
    t0: usize,
    n_tokens: usize,
    out: &mut [[f32; GROUP]; MAX_TOKENS],
);

/// Checks that `group` holds a whole group of `acts.n_cols` columns and that the tokens
/// exist; panics otherwise (a bug in the caller).
pub(crate) fn check_call(
    format: PackedFormat,
    group: &[u8],
    acts: &PackedActs,
    t0: usize,
    n_tokens: usize,
) {
    let bv = format.block_values();
    assert!(
        acts.n_cols.is_multiple_of(bv)
            && group.len() >= acts.n_cols / bv * format.group_block_bytes()
            && n_tokens <= MAX_TOKENS
            && t0 + n_tokens <= acts.n_tokens
            && acts.qs.len() >= acts.n_tokens * acts.n_cols,
        "packed gemm: group or activations do not match the shape"
    );
    let nb32 = acts.n_cols / 32;
    let need = |len: usize, per: usize| len >= acts.n_tokens * per;
    let ok = match format.act_type() {
        DType::Q8_0 => {
            need(acts.d.len(), nb32)
                && need(acts.sums.len(), nb32)
                && need(acts.sums4.len(), acts.n_cols / 4)
        }
        DType::Q8_1 => need(acts.d.len(), nb32) && need(acts.s.len(), nb32),
        _ => need(acts.d.len(), acts.n_cols / QK_K) && need(acts.sums.len(), acts.n_cols / 16),
    };
    assert!(ok, "packed gemm: activation arrays too short");
}
