//! Unit tests of the engine loop's parts that need no model.

use super::stats::Histogram;

#[test]
fn histogram_buckets_are_cumulative() {
    let mut h = Histogram::new(&[0.1, 1.0]);
    for v in [0.05, 0.1, 0.5, 2.0] {
        h.observe(v);
    }
    assert_eq!(h.buckets(), vec![(0.1, 2), (1.0, 3)]);
    assert_eq!(h.count(), 4);
    assert!((h.sum() - 2.65).abs() < 1e-9);
}

#[test]
fn handles_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<super::Engine>();
    send::<super::Ticket>();
    send::<super::EmbedTicket>();
    send_sync::<super::EngineStats>();
}
