//! Small helpers shared by the x86 kernels. Every helper is `#[inline(always)]` and
//! carries no `target_feature` of its own: it is inlined into the `#[target_feature]`
//! kernel that calls it and compiled with that kernel's features.

use core::arch::x86_64::*;

/// Widens f16 bits to f32 with integer operations, exactly (infinities and NaNs
/// included).
///
/// The kernels read one scale per block. Through F16C, LLVM turns that u16 read into a
/// `vpinsrw` that merges into whatever vector register it likes, often the loop's
/// accumulator, which chains every block to the previous block's multiply-add (Q5_0
/// matvec was 2x slower for it); general-purpose registers carry no such dependency.
#[inline(always)]
pub(crate) fn f16_to_f32(bits: u16) -> f32 {
    let h = u32::from(bits);
    let sign = (h & 0x8000) << 16;
    let rest = h & 0x7fff;
    let magnitude = if rest >= 0x7c00 {
        // Infinity or NaN: all exponent bits set, mantissa kept, NaNs made quiet as
        // F16C does.
        let mantissa = rest & 0x03ff;
        let quiet = if mantissa != 0 { 0x0040_0000 } else { 0 };
        f32::from_bits(0x7f80_0000 | (mantissa << 13) | quiet)
    } else {
        // Normal and subnormal halves alike: the bits shifted into an f32 are the
        // value times 2^-112, exactly; the product by 2^112 is exact too.
        f32::from_bits(rest << 13) * f32::from_bits(0x7780_0000)
    };
    f32::from_bits(magnitude.to_bits() | sign)
}

/// Reads the little-endian f16 at `p` as f32.
///
/// # Safety
/// `p` must be valid for reading 2 bytes.
#[inline(always)]
pub(crate) unsafe fn load_f16(p: *const u8) -> f32 {
    // SAFETY: the caller guarantees 2 readable bytes at `p`.
    f16_to_f32(unsafe { p.cast::<u16>().read_unaligned() })
}

/// Reads a little-endian f32 at `p`.
///
/// # Safety
/// `p` must be valid for reading 4 bytes.
#[inline(always)]
pub(crate) unsafe fn load_f32(p: *const u8) -> f32 {
    // SAFETY: the caller guarantees 4 readable bytes at `p`.
    unsafe { p.cast::<f32>().read_unaligned() }
}

/// Narrows `v` to f16 bits with round-to-nearest-even, as `_cvtss_sh` does in ggml.
///
/// # Safety
/// The CPU must support F16C.
#[inline(always)]
pub(crate) unsafe fn f32_to_f16_bits(v: f32) -> u16 {
    // SAFETY: the caller guarantees F16C support; the intrinsics only touch registers.
    unsafe {
        _mm_extract_epi16::<0>(_mm_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm_set_ss(v))) as u16
    }
}

/// Horizontal sum of 8 f32 lanes, in ggml's `hsum_float_8` order.
///
/// # Safety
/// The CPU must support AVX.
#[inline(always)]
pub(crate) unsafe fn hsum_ps(x: __m256) -> f32 {
    // SAFETY: the caller guarantees AVX; the intrinsics only touch registers.
    unsafe {
        hsum_ps128(_mm_add_ps(
            _mm256_extractf128_ps::<1>(x),
            _mm256_castps256_ps128(x),
        ))
    }
}

/// Horizontal sum of 4 f32 lanes.
///
/// # Safety
/// The CPU must support SSE3.
#[inline(always)]
pub(crate) unsafe fn hsum_ps128(x: __m128) -> f32 {
    // SAFETY: the caller guarantees SSE3; the intrinsics only touch registers.
    unsafe {
        let x = _mm_add_ps(x, _mm_movehl_ps(x, x));
        let x = _mm_add_ss(x, _mm_movehdup_ps(x));
        _mm_cvtss_f32(x)
    }
}

/// Horizontal sum of 8 i32 lanes.
///
/// # Safety
/// The CPU must support AVX2.
#[inline(always)]
pub(crate) unsafe fn hsum_i32(a: __m256i) -> i32 {
    // SAFETY: the caller guarantees AVX2; the intrinsics only touch registers.
    unsafe {
        hsum_i32_128(_mm_add_epi32(
            _mm256_castsi256_si128(a),
            _mm256_extracti128_si256::<1>(a),
        ))
    }
}

/// Horizontal sum of 4 i32 lanes.
///
/// # Safety
/// The CPU must support SSE2.
#[inline(always)]
pub(crate) unsafe fn hsum_i32_128(a: __m128i) -> i32 {
    // SAFETY: the caller guarantees SSE2; the intrinsics only touch registers.
    unsafe {
        let hi64 = _mm_unpackhi_epi64(a, a);
        let sum64 = _mm_add_epi32(hi64, a);
        let hi32 = _mm_shuffle_epi32::<0b10_11_00_01>(sum64);
        _mm_cvtsi128_si32(_mm_add_epi32(sum64, hi32))
    }
}

/// Sums of 4 adjacent products of unsigned bytes `a` and signed bytes `b`, as 8 i32
/// lanes. With `VNNI` one `vpdpbusd`; without it `vpmaddubsw` + `vpmaddwd`, which is
/// exact as long as no pair of products exceeds i16 (every caller keeps `a <= 128`
/// with `|b| <= 127`, or `a <= 63`).
///
/// # Safety
/// The CPU must support AVX2, and AVX512-VNNI with AVX512-VL when `VNNI` is true.
#[inline(always)]
pub(crate) unsafe fn dot_u8i8<const VNNI: bool>(a: __m256i, b: __m256i) -> __m256i {
    // SAFETY: the caller guarantees the features named above; registers only.
    unsafe {
        if VNNI {
            _mm256_dpbusd_epi32(_mm256_setzero_si256(), a, b)
        } else {
            _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1))
        }
    }
}

/// Sums of 4 adjacent products of signed bytes `a` and `b`, as 8 i32 lanes.
/// `a` must not hold -128 together with a `b` of -128 (activations never do: they are
/// quantized to -127..=127).
///
/// # Safety
/// As for [`dot_u8i8`].
#[inline(always)]
pub(crate) unsafe fn dot_i8i8<const VNNI: bool>(a: __m256i, b: __m256i) -> __m256i {
    // SAFETY: the caller guarantees the features; registers only.
    unsafe { dot_u8i8::<VNNI>(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a)) }
}

/// Spreads the 32 bits at `p` to 32 bytes, 0xFF where the bit is set and 0 elsewhere.
///
/// # Safety
/// `p` must be valid for reading 4 bytes; the CPU must support AVX2.
#[inline(always)]
pub(crate) unsafe fn bytes_from_bits_32(p: *const u8) -> __m256i {
    // SAFETY: the caller guarantees 4 readable bytes at `p` and AVX2.
    unsafe {
        let bits = p.cast::<i32>().read_unaligned();
        let shuffle = _mm256_set_epi64x(
            0x0303030303030303,
            0x0202020202020202,
            0x0101010101010101,
            0x0000000000000000,
        );
        let bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(bits), shuffle);
        let bit_mask = _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe);
        _mm256_cmpeq_epi8(_mm256_or_si256(bytes, bit_mask), _mm256_set1_epi64x(-1))
    }
}

/// Unpacks 16 bytes of nibbles at `p` into 32 bytes: the low nibbles first, then the
/// high nibbles, each in 0..=15.
///
/// # Safety
/// `p` must be valid for reading 16 bytes; the CPU must support AVX2.
#[inline(always)]
pub(crate) unsafe fn bytes_from_nibbles_32(p: *const u8) -> __m256i {
    // SAFETY: the caller guarantees 16 readable bytes at `p` and AVX2.
    unsafe {
        let tmp = _mm_loadu_si128(p.cast());
        let bytes = _mm256_set_m128i(_mm_srli_epi16::<4>(tmp), tmp);
        _mm256_and_si256(bytes, _mm256_set1_epi8(0x0F))
    }
}

/// Loads 32 bytes at `p`.
///
/// # Safety
/// `p` must be valid for reading 32 bytes; the CPU must support AVX.
#[inline(always)]
pub(crate) unsafe fn load256(p: *const u8) -> __m256i {
    // SAFETY: the caller guarantees 32 readable bytes at `p` and AVX.
    unsafe { _mm256_loadu_si256(p.cast()) }
}

/// Bytes that are `value` where the matching bit of the 32 bits at `p` equals
/// `when_set`, and 0 elsewhere. With `AVX512` a mask register does it in one step.
///
/// # Safety
/// `p` must be valid for reading 4 bytes; the CPU must support AVX2, and AVX-512 BW
/// with VL when `AVX512` is true.
#[inline(always)]
pub(crate) unsafe fn select_by_bits<const AVX512: bool>(
    p: *const u8,
    when_set: bool,
    value: __m256i,
) -> __m256i {
    // SAFETY: the caller guarantees 4 readable bytes and the features.
    unsafe {
        if AVX512 {
            let bits = p.cast::<u32>().read_unaligned();
            let mask = if when_set { bits } else { !bits };
            _mm256_maskz_mov_epi8(mask, value)
        } else if when_set {
            _mm256_and_si256(bytes_from_bits_32(p), value)
        } else {
            _mm256_andnot_si256(bytes_from_bits_32(p), value)
        }
    }
}

/// How far ahead of the block being multiplied the packed-weight kernels ask for the
/// weights. Decode streams every weight from memory once, and one core's hardware
/// prefetchers keep too few lines in flight to draw the memory's bandwidth (they stop
/// at each 4 KiB page); asking for the bytes some 40 lines ahead raised one Zen 4
/// core's matrix-vector speed from memory by about half (2048 to 3072 bytes measured
/// alike; 4096 less, as lines get evicted before use).
pub(crate) const PREFETCH_AHEAD: usize = 2560;

/// Prefetches, into every cache level, the `bytes` bytes that start [`PREFETCH_AHEAD`]
/// past `block`.
///
/// A prefetch never faults, so the addresses may run past the end of the weights (the
/// last blocks of a matrix); they are formed with wrapping arithmetic and never read.
#[inline(always)]
pub(crate) fn prefetch_ahead(block: *const u8, bytes: usize) {
    let mut off = 0;
    while off < bytes {
        let p = block.wrapping_add(PREFETCH_AHEAD + off);
        // SAFETY: a prefetch is a hint: it reads nothing architecturally and does not
        // fault on any address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) };
        off += 64;
    }
}
