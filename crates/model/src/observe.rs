//! A hook that sees every named intermediate of the forward pass, to dump activations and
//! diff them against llama.cpp's (whose graph callback uses the same names where they
//! exist: `attn_norm`, `Qcur`, `ffn_out`, …).

/// Receives intermediates as the forward pass produces them.
pub trait Observer {
    /// `data` holds `n_rows` rows of one intermediate called `name` (see the list in
    /// [`crate::forward`]); `layer_idx` is `None` outside the layers.
    fn observe(
        &mut self,
        name: &'static str,
        layer_idx: Option<usize>,
        n_rows: usize,
        data: &[f32],
    );
}

/// The observer of a plain forward call: sees nothing.
pub(crate) struct NoObserver;

impl Observer for NoObserver {
    fn observe(&mut self, _: &'static str, _: Option<usize>, _: usize, _: &[f32]) {}
}
