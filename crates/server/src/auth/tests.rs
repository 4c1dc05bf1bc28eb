use super::{bearer_token, is_open_path, keys_match};

#[test]
fn keys_match_only_when_equal() {
    let cases: &[(&[u8], &[u8], bool)] = &[
        (b"secret", b"secret", true),
        (b"secreT", b"secret", false),
        (b"secre", b"secret", false),
        (b"secrets", b"secret", false),
        (b"", b"secret", false),
        (b"", b"", true),
    ];
    for &(given, expected, result) in cases {
        assert_eq!(
            keys_match(given, expected),
            result,
            "{given:?} vs {expected:?}"
        );
    }
}

#[test]
fn bearer_token_parses_the_header() {
    let cases: &[(&[u8], Option<&[u8]>)] = &[
        (b"Bearer abc", Some(b"abc")),
        (b"bearer abc", Some(b"abc")),
        (b"BEARER  abc  ", Some(b"abc")),
        (b"Basic abc", None),
        (b"Bearer", None),
        (b"Bearer ", None),
        (b"Bearerabc", None),
        (b"", None),
    ];
    for &(header, token) in cases {
        assert_eq!(
            bearer_token(header),
            token,
            "{:?}",
            String::from_utf8_lossy(header)
        );
    }
}

#[test]
fn only_probes_and_the_page_are_open() {
    for path in ["/health", "/ready", "/"] {
        assert!(is_open_path(path), "{path}");
    }
    for path in [
        "/metrics",
        "/v1/models",
        "/api/tags",
        "/v1/chat/completions",
        "/healthz",
    ] {
        assert!(!is_open_path(path), "{path}");
    }
}
