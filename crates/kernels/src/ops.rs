//! Transformer operations on f32 activations: norms, rope, softmax, activations,
//! attention.
