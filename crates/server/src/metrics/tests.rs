use super::{escape, render, HistogramSnapshot, Metrics, ModelStats};

#[test]
fn requests_are_counted_by_route_and_status() {
    let metrics = Metrics::default();
    metrics.record_request("/v1/models", 200);
    metrics.record_request("/v1/models", 200);
    metrics.record_request("/v1/models", 401);
    assert_eq!(
        metrics.requests(),
        vec![
            (("/v1/models".to_string(), 200), 2),
            (("/v1/models".to_string(), 401), 1)
        ]
    );
}

#[test]
fn render_writes_the_text_format() {
    let model = ModelStats {
        model: "m:1b".into(),
        queue_depth: 2,
        running: 3,
        kv_blocks_total: 10,
        kv_blocks_used: 4,
        kv_blocks_cached: 2,
        kv_block_bytes: 4096,
        prompt_tokens_total: 100,
        prompt_tokens_cached_total: 64,
        prefix_cache_lookups_total: 3,
        prefix_cache_hits_total: 1,
        generated_tokens_total: 50,
        requests_total: 7,
        ttft_seconds: HistogramSnapshot {
            buckets: vec![(0.1, 1), (1.0, 3)],
            sum: 1.5,
            count: 4,
        },
        itl_seconds: HistogramSnapshot::default(),
    };
    let text = render(&[(("/v1/chat/completions".into(), 200), 5)], &[model], true);
    for line in [
        "slm_ready 1",
        "# TYPE slm_http_requests_total counter",
        "slm_http_requests_total{route=\"/v1/chat/completions\",status=\"200\"} 5",
        "slm_queue_depth{model=\"m:1b\"} 2",
        "slm_running_sequences{model=\"m:1b\"} 3",
        "slm_kv_blocks_used{model=\"m:1b\"} 4",
        "slm_kv_blocks_free{model=\"m:1b\"} 6",
        "slm_kv_blocks_cached{model=\"m:1b\"} 2",
        "slm_kv_block_bytes{model=\"m:1b\"} 4096",
        "slm_prompt_tokens_cached_total{model=\"m:1b\"} 64",
        "slm_prefix_cache_lookups_total{model=\"m:1b\"} 3",
        "slm_prefix_cache_hits_total{model=\"m:1b\"} 1",
        "slm_prompt_tokens_total{model=\"m:1b\"} 100",
        "slm_generated_tokens_total{model=\"m:1b\"} 50",
        "# TYPE slm_time_to_first_token_seconds histogram",
        "slm_time_to_first_token_seconds_bucket{model=\"m:1b\",le=\"0.1\"} 1",
        "slm_time_to_first_token_seconds_bucket{model=\"m:1b\",le=\"1\"} 3",
        "slm_time_to_first_token_seconds_bucket{model=\"m:1b\",le=\"+Inf\"} 4",
        "slm_time_to_first_token_seconds_sum{model=\"m:1b\"} 1.5",
        "slm_time_to_first_token_seconds_count{model=\"m:1b\"} 4",
        "slm_inter_token_latency_seconds_count{model=\"m:1b\"} 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    // Every sample line is `name{labels} value` or `name value`, every family has HELP
    // and TYPE before its samples.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let value = line.rsplit(' ').next().expect("a value");
        assert!(value.parse::<f64>().is_ok(), "bad sample {line:?}");
    }
}

#[test]
fn label_values_are_escaped() {
    assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}
