//! Text to token ids and back from GGUF metadata alone: byte-level BPE with the named
//! pre-tokenizer, SentencePiece as llama.cpp runs it, special tokens, and incremental
//! detokenization that only ever emits valid UTF-8.
