use super::*;

fn token(id: u32, needs_parse_special: bool) -> SpecialToken {
    SpecialToken {
        id,
        needs_parse_special,
        lstrip: false,
        rstrip: false,
    }
}

fn show(text: &str, fragments: &[Fragment]) -> Vec<String> {
    fragments
        .iter()
        .map(|f| match f {
            Fragment::Token(id) => format!("#{id}"),
            Fragment::Text(r) => text[r.clone()].to_owned(),
        })
        .collect()
}

#[test]
fn longer_tokens_win_even_when_they_start_later() {
    let special = SpecialTokens::new(vec![
        ("ab".into(), token(1, false)),
        ("bcd".into(), token(2, false)),
    ]);
    let text = "abcd ab";
    assert_eq!(
        show(text, &special.partition(text, true)),
        ["a", "#2", " ", "#1"]
    );
}

#[test]
fn control_tokens_need_parse_special() {
    let special = SpecialTokens::new(vec![
        ("<c>".into(), token(7, true)),
        ("<u>".into(), token(8, false)),
    ]);
    let text = "x<c>y<u>z";
    assert_eq!(
        show(text, &special.partition(text, true)),
        ["x", "#7", "y", "#8", "z"]
    );
    assert_eq!(
        show(text, &special.partition(text, false)),
        ["x<c>y", "#8", "z"]
    );
}

#[test]
fn adjacent_and_repeated_tokens() {
    let special = SpecialTokens::new(vec![
        ("\n".into(), token(3, false)),
        ("\n\n".into(), token(4, false)),
    ]);
    let text = "\n\n\na\n";
    assert_eq!(
        show(text, &special.partition(text, false)),
        ["#4", "#3", "a", "#3"]
    );
    assert!(special.partition("", true).is_empty());
}

#[test]
fn strip_attributes_drop_whitespace_next_to_the_token() {
    let mut t = token(5, false);
    t.lstrip = true;
    t.rstrip = true;
    let special = SpecialTokens::new(vec![("<m>".into(), t)]);
    let text = "a  <m> \tb";
    assert_eq!(
        show(text, &special.partition(text, false)),
        ["a", "#5", "b"]
    );
}
