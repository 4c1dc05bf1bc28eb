//! Helpers: finding models and golden data, running the binary, the near-tie rule.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// A catalog model the tests use.
#[derive(Debug, Clone, Copy)]
pub struct TestModel {
    /// File stem in the store and in golden file names.
    pub stem: &'static str,
    /// Catalog name, for `slm pull`.
    pub name: &'static str,
}

pub const SMOLLM2: TestModel = TestModel {
    stem: "smollm2-135m",
    name: "smollm2:135m",
};
pub const GEMMA3: TestModel = TestModel {
    stem: "gemma3-270m",
    name: "gemma3:270m",
};
pub const QWEN05: TestModel = TestModel {
    stem: "qwen2.5-coder-0.5b",
    name: "qwen2.5-coder:0.5b",
};
pub const QWEN15: TestModel = TestModel {
    stem: "qwen2.5-coder-1.5b",
    name: "qwen2.5-coder:1.5b",
};

/// True when tests that load real models should run; otherwise says the test was skipped.
pub fn models_enabled(test: &str) -> bool {
    if std::env::var("SLM_TEST_MODELS").as_deref() == Ok("1") {
        return true;
    }
    eprintln!("skipped {test}: set SLM_TEST_MODELS=1 to run tests that load real models");
    false
}

/// The store's file of a model; fails with the command that fetches it.
pub fn model_path(model: TestModel) -> PathBuf {
    let home = std::env::var_os("SLM_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/slm")))
        .expect("HOME or SLM_HOME is set");
    let path = home.join("models").join(format!("{}.gguf", model.stem));
    assert!(
        path.is_file(),
        "model file {} is missing; run: slm pull {}",
        path.display(),
        model.name
    );
    path
}

/// A file of the test data folder.
pub fn data_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(relative)
}

/// A golden JSON file, parsed.
pub fn golden(name: &str) -> Value {
    let path = data_path(&format!("golden/{name}"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Runs `slm` with these arguments, stdin empty.
pub fn slm(args: &[&str]) -> Output {
    slm_with_input(args, None)
}

/// Runs `slm` with these arguments and, if given, these bytes on stdin.
pub fn slm_with_input(args: &[&str], input: Option<&[u8]>) -> Output {
    slm_command(args, input, &[])
}

/// Runs `slm` with extra environment variables.
pub fn slm_command(args: &[&str], input: Option<&[u8]>, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_slm"));
    command
        .args(args)
        .envs(env.iter().copied())
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("the slm binary starts");
    if let Some(bytes) = input {
        let mut stdin = child.stdin.take().expect("stdin is piped");
        stdin.write_all(bytes).expect("write to slm's stdin");
    }
    child.wait_with_output().expect("slm runs to the end")
}

/// stdout and stderr as text, for assertion messages.
pub fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The reference's two best tokens at one generated position.
#[derive(Debug, Clone, Copy)]
pub struct Top2 {
    pub id: u32,
    pub id2: u32,
    /// logprob - logprob2: the logit gap.
    pub gap: f64,
}

/// Near-tie threshold of golden/README.md: a different token is acceptable only where the
/// reference's two best were closer than this.
pub const NEAR_TIE_GAP: f64 = 0.5;

pub fn ids(value: &Value) -> Vec<u32> {
    value
        .as_array()
        .expect("an array of ids")
        .iter()
        .map(|v| v.as_u64().expect("an id") as u32)
        .collect()
}

pub fn top2(case: &Value) -> Vec<Top2> {
    case["top2"]
        .as_array()
        .expect("top2 array")
        .iter()
        .map(|row| Top2 {
            id: row[0].as_u64().expect("id") as u32,
            id2: row[2].as_u64().expect("id2") as u32,
            gap: row[1].as_f64().expect("logprob") - row[3].as_f64().expect("logprob2"),
        })
        .collect()
}

/// Walks generated ids against the reference with the near-tie rule. `ended_with_eog`: our
/// generation stopped at an end-of-generation token right after `ours`. Returns how many
/// leading tokens matched exactly, or what is wrong.
pub fn compare_greedy(
    ours: &[u32],
    ended_with_eog: bool,
    case: &Value,
    is_eog: impl Fn(u32) -> bool,
) -> Result<usize, String> {
    let reference = ids(&case["continuation_ids"]);
    let top2 = top2(case);
    for (i, &expected) in reference.iter().enumerate() {
        let t = top2[i];
        assert_eq!(
            t.id, expected,
            "golden file: top2 agrees with the continuation"
        );
        let got = match ours.get(i) {
            Some(&got) => got,
            None if ended_with_eog => {
                if t.gap < NEAR_TIE_GAP && is_eog(t.id2) {
                    return Ok(i);
                }
                return Err(format!(
                    "stopped at end of generation at position {i}, reference token {expected} (gap {:.3})",
                    t.gap
                ));
            }
            None => {
                return Err(format!(
                    "only {} tokens generated, expected {}",
                    ours.len(),
                    reference.len()
                ))
            }
        };
        if got == expected {
            continue;
        }
        if t.gap < NEAR_TIE_GAP && got == t.id2 {
            return Ok(i);
        }
        return Err(format!(
            "position {i}: got token {got}, reference {expected} (second {}, gap {:.3})\nours: {ours:?}\nreference: {reference:?}",
            t.id2, t.gap
        ));
    }
    Ok(reference.len())
}

/// Compares generated text with the reference continuation: equal, or equal up to the start
/// of a token where the reference had a near tie and the text goes on with the second
/// token's piece (`second_piece(id)` gives a token's bytes).
pub fn compare_greedy_text(
    ours: &[u8],
    case: &Value,
    second_piece: impl Fn(u32) -> Vec<u8>,
) -> Result<(), String> {
    let reference = case["continuation"]
        .as_str()
        .expect("continuation")
        .as_bytes();
    if ours == reference {
        return Ok(());
    }
    let diff = ours
        .iter()
        .zip(reference)
        .take_while(|(a, b)| a == b)
        .count();
    let ends: Vec<usize> = case["piece_end_bytes"]
        .as_array()
        .expect("piece_end_bytes")
        .iter()
        .map(|v| v.as_u64().expect("offset") as usize)
        .collect();
    let describe = || {
        format!(
            "text differs at byte {diff}\nours:      {:?}\nreference: {:?}",
            String::from_utf8_lossy(ours),
            String::from_utf8_lossy(reference)
        )
    };
    let Some(i) = ends.iter().position(|&end| end > diff) else {
        return Err(describe());
    };
    let start = if i == 0 { 0 } else { ends[i - 1] };
    let top2 = top2(case);
    let t = top2[i];
    let piece = second_piece(t.id2);
    if t.gap < NEAR_TIE_GAP && !piece.is_empty() && ours[start..].starts_with(&piece) {
        return Ok(());
    }
    // The token we chose may have been longer than the reference's at an earlier
    // position (".\n\n" where the reference has "." then " The"): the text then agrees
    // past that token's end. The divergence is at that earlier token if the reference's
    // second choice there is what we wrote and reaches past the first differing byte.
    for j in (0..i).rev() {
        let start_j = if j == 0 { 0 } else { ends[j - 1] };
        let t_j = top2[j];
        let piece_j = second_piece(t_j.id2);
        if t_j.gap < NEAR_TIE_GAP
            && start_j + piece_j.len() > diff
            && ours[start_j..].starts_with(&piece_j)
        {
            return Ok(());
        }
    }
    Err(format!("{} (token {i}, gap {:.3})", describe(), t.gap))
}
