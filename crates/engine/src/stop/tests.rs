use super::*;

/// Feeds `pieces` one by one; returns everything shown and whether it stopped.
fn run(stops: &[&str], pieces: &[&str]) -> (String, bool) {
    let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
    let mut m = StopMatcher::new(&stops);
    let mut shown = String::new();
    for piece in pieces {
        let r = m.push(piece);
        shown.push_str(&r.text);
        if r.stopped {
            return (shown, true);
        }
    }
    shown.push_str(&m.finish());
    (shown, false)
}

fn check(stops: &[&str], pieces: &[&str], expected: &str, stopped: bool) {
    assert_eq!(run(stops, pieces), (expected.to_string(), stopped));
}

#[test]
fn cases() {
    check(&[], &["a", "b"], "ab", false);
    check(
        &["\n\n"],
        &["Hello", " world", "\n", "\n", "more"],
        "Hello world",
        true,
    );
    check(&["\n\n"], &["Hello\n", "x"], "Hello\nx", false);
    check(&["STOP"], &["abcST", "OPdef"], "abc", true);
    check(&["STOP"], &["abcST", "x"], "abcSTx", false);
    check(&["STOP"], &["ST"], "ST", false);
    check(&["END", "ND!"], &["xEN", "D!"], "x", true);
    check(&["b", "abc"], &["ab"], "a", true);
    check(&[""], &["abc"], "abc", false);
    check(&["é!"], &["caf", "é", "!"], "caf", true);
    check(&["é!"], &["caf", "é", "s"], "cafés", false);
}

#[test]
fn held_text_is_not_shown_early() {
    let mut m = StopMatcher::new(&["</s>".to_string()]);
    assert_eq!(m.push("hi </").text, "hi ");
    assert_eq!(m.push("x").text, "</x");
}
