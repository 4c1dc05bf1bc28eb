use kernels::ops::RopeStyle;

use crate::family::{Activation, Family, Need, SlidingWindow, FAMILIES, GEMMA3, LLAMA, QWEN2};

#[test]
fn families_are_found_by_architecture() {
    assert_eq!(Family::for_architecture("llama"), Some(LLAMA));
    assert_eq!(Family::for_architecture("qwen2"), Some(QWEN2));
    assert_eq!(Family::for_architecture("gemma3"), Some(GEMMA3));
    assert_eq!(Family::for_architecture("gemma2"), None);
    assert_eq!(Family::for_architecture(""), None);
    for family in FAMILIES {
        assert_eq!(Family::for_architecture(family.architecture), Some(family));
    }
}

#[test]
fn descriptions_match_llama_cpp() {
    // llama_model_rope_type: LLAMA is NORM, QWEN2 and GEMMA3 are NEOX.
    assert_eq!(LLAMA.rope_style, RopeStyle::Normal);
    assert_eq!(QWEN2.rope_style, RopeStyle::Neox);
    assert_eq!(GEMMA3.rope_style, RopeStyle::Neox);
    assert_eq!(QWEN2.qkv_bias, Need::Required);
    assert_eq!((GEMMA3.qk_norm, GEMMA3.post_norms), (true, true));
    assert_eq!(GEMMA3.activation, Activation::GeluGated);
    assert_eq!(
        GEMMA3.sliding_window,
        SlidingWindow::Pattern {
            period: 6,
            local_rope_base: 10_000.0
        }
    );
}

#[test]
fn models_and_caches_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<crate::Model>();
    send_sync::<crate::KvCache>();
}
