//! `slm bench --json`: one JSON object with every measure, positive where it ran and null
//! where it was skipped. Speeds are never compared with anything.

use serde_json::Value;

use crate::common::*;

fn positive(report: &Value, pointer: &str) -> f64 {
    let value = report
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{pointer} is a number in {report}"));
    assert!(value > 0.0, "{pointer} is positive in {report}");
    value
}

#[test]
fn bench_json_reports_every_measure() {
    if !models_enabled("bench_json_reports_every_measure") {
        return;
    }
    let path = model_path(SMOLLM2);
    let path = path.to_str().expect("UTF-8 path");
    let output = slm(&[
        "bench",
        path,
        "-p",
        "16",
        "-n",
        "4",
        "-r",
        "1",
        "-t",
        "1",
        "--json",
        "--no-bandwidth",
    ]);
    assert!(output.status.success(), "{}", describe(&output));
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is one JSON object ({e}): {}", describe(&output)));
    assert_eq!(report["model"].as_str(), Some(path));
    assert_eq!(report["threads"].as_u64(), Some(1));
    assert_eq!(report["pp"]["tokens"].as_u64(), Some(16));
    assert_eq!(report["tg"]["tokens"].as_u64(), Some(4));
    assert_eq!(report["tg"]["depth"].as_u64(), Some(0));
    for test in ["pp", "tg"] {
        for stat in ["median", "min", "max"] {
            positive(&report, &format!("/{test}/{stat}"));
        }
        assert_eq!(report[test]["samples"].as_array().map(Vec::len), Some(1));
    }
    for field in ["load_ms", "peak_rss_mib", "bytes_per_token", "kv_cache_mib"] {
        positive(&report, &format!("/{field}"));
    }
    // SmolLM2's output is tied to its embedding: every weight matrix is read per token
    // (from the file or from its repacked copy), so a token reads about the file's size.
    let file_bytes = positive(&report, "/model_file_mib") * 1048576.0;
    let weight_bytes = positive(&report, "/weight_bytes_per_token");
    assert!(
        weight_bytes > 0.8 * file_bytes && weight_bytes < 1.2 * file_bytes,
        "{weight_bytes} bytes per token, file {file_bytes}"
    );
    assert!(report["repacked_mib"].as_f64().is_some_and(|m| m >= 0.0));
    for skipped in ["bandwidth_gbs", "tg_bound", "tg_share_of_bound"] {
        assert!(report[skipped].is_null(), "{skipped} is null in {report}");
    }
}

#[test]
fn bench_skips_what_is_asked_and_measures_bandwidth() {
    if !models_enabled("bench_skips_what_is_asked_and_measures_bandwidth") {
        return;
    }
    let path = model_path(SMOLLM2);
    let output = slm(&[
        "bench",
        path.to_str().expect("UTF-8 path"),
        "-p",
        "0",
        "-n",
        "2",
        "-r",
        "1",
        "-t",
        "1",
        "--json",
    ]);
    assert!(output.status.success(), "{}", describe(&output));
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is one JSON object ({e}): {}", describe(&output)));
    assert!(report["pp"].is_null());
    for field in ["bandwidth_gbs", "tg_bound", "tg_share_of_bound"] {
        positive(&report, &format!("/{field}"));
    }
    assert!(report["fits_in_last_level_cache"].is_boolean(), "{report}");
    let llc = &report["last_level_cache_mib"];
    assert!(
        llc.is_null() || llc.as_f64().is_some_and(|m| m > 0.0),
        "{report}"
    );
}

#[test]
fn bench_without_a_model_is_a_usage_error() {
    let output = slm(&["bench"]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
}
