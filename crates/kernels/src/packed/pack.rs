//! Repacking ggml blocks into the interleaved layout of [`super::layout`].

use crate::blocks::{BlockQ4_K, BlockQ6_K};
use crate::matmul::WeightView;
use crate::pool;
use crate::scalar::kquants::{q4_k_quants, q6_k_quants, scale_min_k4};

use super::layout::*;
use super::{PackedFormat, PackedMatrix, GROUP};

/// Repacks `w` (row-major ggml blocks), or returns `None` when its type has no packed
/// layout. The work is spread over the compute pool.
pub fn pack(w: &WeightView) -> Option<PackedMatrix> {
    let format = PackedFormat::for_dtype(w.dtype)?;
    let mut m = PackedMatrix::zeroed(format, w.n_rows, w.n_cols);
    let group_bytes = m.group_bytes();
    let n_groups = m.n_groups();
    if group_bytes == 0 || n_groups == 0 {
        return Some(m);
    }
    let row_bytes = w.row_bytes();
    let dst = SharedMut(m.data_mut().as_mut_ptr());
    pool::for_each_chunk(n_groups, |g| {
        // SAFETY: group `g < n_groups` owns bytes `g * group_bytes..(g + 1) * group_bytes`
        // of the packed data, which no other chunk touches; the data outlives the call.
        let group =
            unsafe { std::slice::from_raw_parts_mut(dst.get().add(g * group_bytes), group_bytes) };
        for r in 0..GROUP {
            let row = g * GROUP + r;
            if row >= w.n_rows {
                break;
            }
            pack_row(
                format,
                &w.data[row * row_bytes..(row + 1) * row_bytes],
                r,
                group,
            );
        }
    });
    Some(m)
}

/// A pointer that pool threads share to write disjoint groups.
#[derive(Clone, Copy)]
struct SharedMut(*mut u8);
// SAFETY: each thread writes only its own groups' bytes; `for_each_chunk` returns after
// all threads are done.
unsafe impl Sync for SharedMut {}
// SAFETY: as for `Sync`.
unsafe impl Send for SharedMut {}
impl SharedMut {
    fn get(self) -> *mut u8 {
        self.0
    }
}

/// Writes row `r` of a group from its ggml blocks `src`.
fn pack_row(format: PackedFormat, src: &[u8], r: usize, group: &mut [u8]) {
    let src_block = format.dtype().type_size();
    let dst_block = format.group_block_bytes();
    for (b, dst) in group.chunks_exact_mut(dst_block).enumerate() {
        let s = &src[b * src_block..(b + 1) * src_block];
        match format {
            PackedFormat::Q4_0 => {
                put_nibbles(&mut dst[..256], r, &nibble_codes(&s[2..18], 0));
                put_f16(&mut dst[Q4_0_D..], r, &s[0..2]);
            }
            PackedFormat::Q4_1 => {
                put_nibbles(&mut dst[..256], r, &nibble_codes(&s[4..20], 0));
                put_f16(&mut dst[Q4_1_D..], r, &s[0..2]);
                put_f16(&mut dst[Q4_1_M..], r, &s[2..4]);
            }
            PackedFormat::Q5_0 => {
                let qh = u32::from_le_bytes([s[2], s[3], s[4], s[5]]);
                let codes = nibble_codes(&s[6..22], qh);
                put_nibbles(&mut dst[..256], r, &codes);
                put_bits(&mut dst[Q5_0_QH..Q5_0_QH + 64], r, &codes);
                put_f16(&mut dst[Q5_0_D..], r, &s[0..2]);
            }
            PackedFormat::Q5_1 => {
                let qh = u32::from_le_bytes([s[4], s[5], s[6], s[7]]);
                let codes = nibble_codes(&s[8..24], qh);
                put_nibbles(&mut dst[..256], r, &codes);
                put_bits(&mut dst[Q5_1_QH..Q5_1_QH + 64], r, &codes);
                put_f16(&mut dst[Q5_1_D..], r, &s[0..2]);
                put_f16(&mut dst[Q5_1_M..], r, &s[2..4]);
            }
            PackedFormat::Q8_0 => {
                let codes: [u8; 32] = std::array::from_fn(|i| s[2 + i] ^ 0x80);
                put_lines(&mut dst[..512], r, &codes);
                put_f16(&mut dst[Q8_0_D..], r, &s[0..2]);
            }
            PackedFormat::Q4K => pack_q4k(s, r, dst),
            PackedFormat::Q6K => pack_q6k(s, r, dst),
        }
    }
}

fn pack_q4k(s: &[u8], r: usize, dst: &mut [u8]) {
    let block: BlockQ4_K = bytemuck::pod_read_unaligned(s);
    let q = q4_k_quants(&block);
    for (j, codes) in q.chunks_exact(32).enumerate() {
        let codes: &[u8; 32] = codes.try_into().expect("chunks of 32");
        put_nibbles(&mut dst[j * Q4K_SUB..(j + 1) * Q4K_SUB], r, codes);
        let (sc, m) = scale_min_k4(j, &block.scales);
        dst[Q4K_SC + 16 * j + r] = sc;
        dst[Q4K_MIN + 16 * j + r] = m;
    }
    put_f16(&mut dst[Q4K_D..], r, &s[0..2]);
    put_f16(&mut dst[Q4K_DMIN..], r, &s[2..4]);
}

fn pack_q6k(s: &[u8], r: usize, dst: &mut [u8]) {
    let block: BlockQ6_K = bytemuck::pod_read_unaligned(s);
    let q = q6_k_quants(&block);
    for (c, codes) in q.chunks_exact(32).enumerate() {
        let codes: [u8; 32] = std::array::from_fn(|i| (codes[i] + 32) as u8);
        let chunk = &mut dst[c * Q6K_CHUNK..(c + 1) * Q6K_CHUNK];
        put_nibbles(&mut chunk[..256], r, &codes);
        put_2bit_planes(&mut chunk[Q6K_HI..Q6K_HI + 128], r, &codes);
    }
    for (j, &sc) in block.scales.iter().enumerate() {
        dst[Q6K_SC + 16 * j + r] = sc as u8;
    }
    put_f16(&mut dst[Q6K_D..], r, &s[208..210]);
}

/// The 32 codes of a legacy block: `qs[j]`'s low nibble is value `j`, its high nibble
/// value `j + 16`; bit `j` of `qh` is value `j`'s fifth bit.
fn nibble_codes(qs: &[u8], qh: u32) -> [u8; 32] {
    std::array::from_fn(|i| {
        let nibble = if i < 16 {
            qs[i] & 0x0f
        } else {
            qs[i - 16] >> 4
        };
        nibble | (((qh >> i) & 1) as u8) << 4
    })
}

/// Low nibbles of codes into 4 lines of `[16][4]`: line `p` low nibbles hold values
/// `4p..4p+4`, high nibbles values `4(p+4)..4(p+4)+4`.
fn put_nibbles(dst: &mut [u8], r: usize, codes: &[u8; 32]) {
    for p in 0..4 {
        for j in 0..4 {
            dst[64 * p + 4 * r + j] =
                (codes[4 * p + j] & 0x0f) | (codes[4 * (p + 4) + j] & 0x0f) << 4;
        }
    }
}

/// Bit 4 of each code into 8 `u64` masks, bit `4r + j` of mask `k` for value `4k + j`.
fn put_bits(dst: &mut [u8], r: usize, codes: &[u8; 32]) {
    for k in 0..8 {
        for j in 0..4 {
            if codes[4 * k + j] & 0x10 != 0 {
                let bit = 4 * r + j;
                dst[8 * k + bit / 8] |= 1 << (bit % 8);
            }
        }
    }
}

/// Bits 4..6 of each code into two planes of `[16][4]`: plane `h` bits `2s..2s+2` hold
/// line `4h + s`.
fn put_2bit_planes(dst: &mut [u8], r: usize, codes: &[u8; 32]) {
    for k in 0..8 {
        let (h, s) = (k / 4, k % 4);
        for j in 0..4 {
            dst[64 * h + 4 * r + j] |= ((codes[4 * k + j] >> 4) & 3) << (2 * s);
        }
    }
}

/// Whole-byte codes into 8 lines of `[16][4]`.
fn put_lines(dst: &mut [u8], r: usize, codes: &[u8; 32]) {
    for k in 0..8 {
        dst[64 * k + 4 * r..64 * k + 4 * r + 4].copy_from_slice(&codes[4 * k..4 * k + 4]);
    }
}

/// Row `r`'s f16 (two little-endian bytes) into a `[16]` f16 array.
fn put_f16(dst: &mut [u8], r: usize, bits: &[u8]) {
    dst[2 * r..2 * r + 2].copy_from_slice(bits);
}
