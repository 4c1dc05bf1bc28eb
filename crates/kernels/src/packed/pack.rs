//! Repacking ggml blocks into the interleaved layout of [`super::layout`].

use crate::blocks::{BlockQ4_K, BlockQ6_K};
use crate::matmul::WeightView;
use crate::pool;
use crate::scalar::kquants::{q6_k_quants, scale_min_k4};

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
    for (s, dst) in src
        .chunks_exact(src_block)
        .zip(group.chunks_exact_mut(dst_block))
    {
        match format {
            PackedFormat::Q4_0 => {
                copy_nibble_lines(&mut dst[..256], r, &s[2..18]);
                put_f16(&mut dst[Q4_0_D..], r, &s[0..2]);
            }
            PackedFormat::Q4_1 => {
                copy_nibble_lines(&mut dst[..256], r, &s[4..20]);
                put_f16(&mut dst[Q4_1_D..], r, &s[0..2]);
                put_f16(&mut dst[Q4_1_M..], r, &s[2..4]);
            }
            PackedFormat::Q5_0 => {
                copy_nibble_lines(&mut dst[..256], r, &s[6..22]);
                put_qh(&mut dst[Q5_0_QH..Q5_0_QH + 64], r, &s[2..6]);
                put_f16(&mut dst[Q5_0_D..], r, &s[0..2]);
            }
            PackedFormat::Q5_1 => {
                copy_nibble_lines(&mut dst[..256], r, &s[8..24]);
                put_qh(&mut dst[Q5_1_QH..Q5_1_QH + 64], r, &s[4..8]);
                put_f16(&mut dst[Q5_1_D..], r, &s[0..2]);
                put_f16(&mut dst[Q5_1_M..], r, &s[2..4]);
            }
            PackedFormat::Q8_0 => {
                for (k, quad) in s[2..34].chunks_exact(4).enumerate() {
                    let v = u32::from_le_bytes(quad.try_into().expect("4 bytes")) ^ 0x8080_8080;
                    dst[64 * k + 4 * r..64 * k + 4 * r + 4].copy_from_slice(&v.to_le_bytes());
                }
                put_f16(&mut dst[Q8_0_D..], r, &s[0..2]);
            }
            PackedFormat::Q4K => pack_q4k(s, r, dst),
            PackedFormat::Q6K => pack_q6k(s, r, dst),
        }
    }
}

/// A legacy block's 16 nibble bytes into 4 lines: `qs[i]` holds values `i` (low) and
/// `i + 16` (high), which is exactly line `i / 4`'s byte `i % 4`.
fn copy_nibble_lines(dst: &mut [u8], r: usize, qs: &[u8]) {
    for (p, quad) in qs.chunks_exact(4).enumerate() {
        dst[64 * p + 4 * r..64 * p + 4 * r + 4].copy_from_slice(quad);
    }
}

/// A legacy block's fifth bits (`qh` bit `i` for value `i`) into the 8 masks: mask `k`
/// gets bits `4k..4k+4` at `4r`.
fn put_qh(dst: &mut [u8], r: usize, qh: &[u8]) {
    let qh = u32::from_le_bytes(qh.try_into().expect("4 bytes"));
    for (k, slot) in dst.chunks_exact_mut(8).enumerate() {
        let nibble = u64::from((qh >> (4 * k)) & 0xf);
        let mask = u64::from_le_bytes((&*slot).try_into().expect("8 bytes")) | nibble << (4 * r);
        slot.copy_from_slice(&mask.to_le_bytes());
    }
}

fn pack_q4k(s: &[u8], r: usize, dst: &mut [u8]) {
    let block: BlockQ4_K = bytemuck::pod_read_unaligned(s);
    for j in 0..8 {
        // Sub-block j is the low (even j) or high (odd j) nibbles of bytes
        // 32 * (j / 2)..; value 4p + i sits in byte 4p + i, value 16 + 4p + i in byte
        // 16 + 4p + i.
        let qs = &block.qs[32 * (j / 2)..32 * (j / 2) + 32];
        let lines = &mut dst[j * Q4K_SUB..(j + 1) * Q4K_SUB];
        for p in 0..4 {
            let a = u32::from_le_bytes(qs[4 * p..4 * p + 4].try_into().expect("4 bytes"));
            let b = u32::from_le_bytes(qs[16 + 4 * p..20 + 4 * p].try_into().expect("4 bytes"));
            let v = if j % 2 == 0 {
                (a & 0x0f0f_0f0f) | (b & 0x0f0f_0f0f) << 4
            } else {
                (a >> 4) & 0x0f0f_0f0f | (b & 0xf0f0_f0f0)
            };
            lines[64 * p + 4 * r..64 * p + 4 * r + 4].copy_from_slice(&v.to_le_bytes());
        }
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

/// Row `r`'s f16 (two little-endian bytes) into a `[16]` f16 array.
fn put_f16(dst: &mut [u8], r: usize, bits: &[u8]) {
    dst[2 * r..2 * r + 2].copy_from_slice(bits);
}
