//! Model architectures as descriptions over one shared transformer block, binding GGUF
//! tensors to weights, the batched forward pass and the KV cache.
