use super::common::f16_to_f32;

#[test]
fn f16_to_f32_is_exact_for_every_f16() {
    for bits in 0..=u16::MAX {
        let want = half::f16::from_bits(bits).to_f32();
        let got = f16_to_f32(bits);
        if want.is_nan() {
            assert!(got.is_nan(), "{bits:#06x}");
            assert_eq!(got.to_bits(), want.to_bits(), "{bits:#06x}: NaN payload");
        } else {
            assert_eq!(got.to_bits(), want.to_bits(), "{bits:#06x}");
        }
    }
}
