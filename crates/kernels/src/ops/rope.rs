//! Rotary position embedding, as ggml's `ggml_compute_forward_rope_flt`.

/// Which values of a head rotate together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeStyle {
    /// Adjacent pairs `(2i, 2i + 1)`: ggml's `GGML_ROPE_TYPE_NORMAL` (Llama).
    Normal,
    /// Pairs split across the halves, `(i, i + n_dims / 2)`: `GGML_ROPE_TYPE_NEOX`
    /// (Qwen2, Gemma 3).
    Neox,
}

/// The parameters of one rope application (ggml's `ggml_rope_ext` arguments).
///
/// Pair `i` of a head at position `p` turns by `p * freq_base^(-2i / n_dims)`, divided by
/// the pair's frequency factor when there is one, scaled by `freq_scale` and blended
/// towards the unscaled angle by YaRN when `ext_factor` is not zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rope {
    /// Pair layout.
    pub style: RopeStyle,
    /// Values of each head that rotate (even, at most the head size); the rest pass through.
    pub n_dims: usize,
    /// Base of the frequencies (`rope.freq_base`).
    pub freq_base: f32,
    /// Linear position scale (`1 / rope.scaling.factor`), 1 for none.
    pub freq_scale: f32,
    /// YaRN extrapolation mix, 0 unless YaRN scaling is on.
    pub ext_factor: f32,
    /// Magnitude scale of cos and sin (`attn_factor`), 1 unless YaRN.
    pub attn_factor: f32,
    /// YaRN correction range in dimensions (`ggml_rope_yarn_corr_dims`), unused when
    /// `ext_factor` is 0.
    pub corr_dims: [f32; 2],
}

impl Rope {
    /// A rope without scaling.
    pub fn new(style: RopeStyle, n_dims: usize, freq_base: f32) -> Rope {
        Rope {
            style,
            n_dims,
            freq_base,
            freq_scale: 1.0,
            ext_factor: 0.0,
            attn_factor: 1.0,
            corr_dims: [0.0, 0.0],
        }
    }

    /// Sets the YaRN correction range as `ggml_rope_yarn_corr_dims` computes it, with
    /// llama.cpp's defaults `beta_fast = 32`, `beta_slow = 1`.
    pub fn with_yarn_corr_dims(
        mut self,
        n_ctx_orig: usize,
        beta_fast: f32,
        beta_slow: f32,
    ) -> Rope {
        let corr_dim = |n_rot: f32| {
            self.n_dims as f32 * (n_ctx_orig as f32 / (n_rot * 2.0 * std::f32::consts::PI)).ln()
                / (2.0 * self.freq_base.ln())
        };
        let start = corr_dim(beta_fast).floor();
        let end = corr_dim(beta_slow).ceil();
        self.corr_dims = [start.max(0.0), end.min(self.n_dims as f32 - 1.0)];
        self
    }

    /// Fills `cache` with `(cos, sin)` of every pair at position `pos`, as
    /// `ggml_rope_cache_init`: the angle starts at `pos` and is multiplied by
    /// `freq_base^(-2/n_dims)` once per pair, in f32, so the angles carry ggml's rounding.
    /// `freq_factors` (Llama 3's `rope_freqs.weight`) divides each pair's angle.
    pub fn fill_cache(
        &self,
        pos: usize,
        freq_factors: Option<&[f32]>, // [n_dims / 2]
        cache: &mut [f32],            // [n_dims]
    ) {
        assert_eq!(cache.len(), self.n_dims);
        if let Some(ff) = freq_factors {
            assert_eq!(ff.len() * 2, self.n_dims);
        }
        let theta_scale = self.freq_base.powf(-2.0 / self.n_dims as f32);
        let mut theta = pos as f32;
        for (pair, cs) in cache.chunks_exact_mut(2).enumerate() {
            let ff = freq_factors.map_or(1.0, |f| f[pair]);
            let (cos, sin) = self.yarn(theta / ff, 2 * pair);
            cs[0] = cos;
            cs[1] = sin;
            theta *= theta_scale;
        }
    }

    /// `rope_yarn`: the rotation of one pair given its unscaled angle.
    fn yarn(&self, theta_extrap: f32, i0: usize) -> (f32, f32) {
        let theta_interp = self.freq_scale * theta_extrap;
        let mut theta = theta_interp;
        let mut mscale = self.attn_factor;
        if self.ext_factor != 0.0 {
            let [low, high] = self.corr_dims;
            let y = ((i0 / 2) as f32 - low) / (high - low).max(0.001);
            let ramp_mix = (1.0 - y.clamp(0.0, 1.0)) * self.ext_factor;
            theta = theta_interp * (1.0 - ramp_mix) + theta_extrap * ramp_mix;
            mscale *= 1.0 + 0.1 * (1.0 / self.freq_scale).ln();
        }
        (theta.cos() * mscale, theta.sin() * mscale)
    }

    /// Rotates one head in place with a cache from [`Rope::fill_cache`].
    pub fn apply(
        &self,
        cache: &[f32],    // [n_dims]
        head: &mut [f32], // [head_dim]
    ) {
        assert_eq!(cache.len(), self.n_dims);
        assert!(self.n_dims <= head.len());
        let half = self.n_dims / 2;
        for (pair, cs) in cache.chunks_exact(2).enumerate() {
            let (i, j) = match self.style {
                RopeStyle::Normal => (2 * pair, 2 * pair + 1),
                RopeStyle::Neox => (pair, pair + half),
            };
            let (cos, sin) = (cs[0], cs[1]);
            let (x0, x1) = (head[i], head[j]);
            head[i] = x0 * cos - x1 * sin;
            head[j] = x0 * sin + x1 * cos;
        }
    }
}
