//! `slm run` with a grammar: the printed output parses under the schema or matches the
//! regex; a bad schema file is an error naming it.

use crate::common::*;

fn run_ok(args: &[&str]) -> String {
    let output = slm(args);
    assert!(output.status.success(), "{}", describe(&output));
    String::from_utf8(output.stdout).expect("UTF-8 stdout")
}

#[test]
fn run_with_json_schema_and_regex() {
    if !models_enabled("run_with_json_schema_and_regex") {
        return;
    }
    let path = model_path(QWEN05);
    let path = path.to_str().expect("UTF-8 path");
    let schema = data_path("order.schema.json");
    let schema = schema.to_str().expect("UTF-8 path");
    let text = run_ok(&[
        "run",
        path,
        "--temp",
        "0",
        "-n",
        "200",
        "--json-schema",
        schema,
        "An order for two pens as JSON",
    ]);
    let value: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text:?} does not parse: {e}"));
    assert!(value["lines"]
        .as_array()
        .is_some_and(|l| (1..=4).contains(&l.len())));
    assert!(["new", "paid", "shipped"].contains(&value["status"].as_str().unwrap_or("")));

    let text = run_ok(&[
        "run",
        path,
        "--temp",
        "0",
        "-n",
        "20",
        "--regex",
        "(yes|no)",
        "Is the sky blue? Answer yes or no.",
    ]);
    assert!(text == "yes" || text == "no", "{text:?}");
}

#[test]
fn bad_schema_file_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("bad.json");
    std::fs::write(&file, "{not json").expect("written");
    let output = slm(&[
        "run",
        "/nonexistent.gguf",
        "--json-schema",
        file.to_str().expect("UTF-8 path"),
        "hi",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad.json is not valid JSON"), "{stderr}");
}
