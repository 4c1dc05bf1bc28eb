//! Sampling through the binary: seeded runs repeat, chat mode and stop strings work.

use crate::common::*;

fn run_text(args: &[&str]) -> String {
    let output = slm(args);
    assert!(output.status.success(), "{}", describe(&output));
    String::from_utf8(output.stdout).expect("UTF-8 stdout")
}

#[test]
fn same_seed_same_output() {
    if !models_enabled("same_seed_same_output") {
        return;
    }
    let path = model_path(SMOLLM2);
    let path = path.to_str().expect("UTF-8 path");
    let args = [
        "run",
        path,
        "--raw",
        "--temp",
        "0.8",
        "--seed",
        "42",
        "-n",
        "24",
        "Once upon a time",
    ];
    let first = run_text(&args);
    assert!(!first.is_empty());
    assert_eq!(
        first,
        run_text(&args),
        "same seed, same settings, same text"
    );
}

#[test]
fn stop_string_is_not_printed() {
    if !models_enabled("stop_string_is_not_printed") {
        return;
    }
    let golden = golden("greedy-smollm2-135m.json");
    let case = &golden["cases"][0];
    // The reference continuation is " Paris.\n\nThe United States…": stop at the blank line.
    let prompt = case["prompt"].as_str().expect("prompt");
    let path = model_path(SMOLLM2);
    let path = path.to_str().expect("UTF-8 path");
    let text = run_text(&[
        "run", path, "--raw", "--temp", "0", "-n", "64", "--stop", "\n\n", prompt,
    ]);
    assert_eq!(text, " Paris.");

    // `-` reads the prompt from stdin.
    let output = slm_with_input(
        &[
            "run", path, "--raw", "--temp", "0", "-n", "64", "--stop", "\n\n", "-",
        ],
        Some(prompt.as_bytes()),
    );
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(output.stdout, b" Paris.");
}

#[test]
fn chat_template_and_chat_command() {
    if !models_enabled("chat_template_and_chat_command") {
        return;
    }
    let path = model_path(SMOLLM2);
    let path = path.to_str().expect("UTF-8 path");
    let reply = run_text(&["run", path, "--temp", "0", "-n", "16", "What is 2+2?"]);
    assert!(!reply.trim().is_empty());
    assert!(!reply.contains("<|im_start|>"), "{reply:?}");

    let output = slm_with_input(
        &["chat", path, "--temp", "0", "-n", "8"],
        Some(b"Hello\nWhat is your name?\n/bye\nnot read\n"),
    );
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = String::from_utf8(output.stdout).expect("UTF-8");
    // Two replies, each ending its line.
    assert!(stdout.ends_with('\n'), "{stdout:?}");
    assert!(
        !stdout.contains(">>>"),
        "no prompt when stdin is not a terminal"
    );
}

#[test]
fn chat_template_flag_overrides_the_file_and_show_prints_the_source() {
    if !models_enabled("chat_template_flag_overrides_the_file_and_show_prints_the_source") {
        return;
    }
    let path = model_path(SMOLLM2);
    let path = path.to_str().expect("UTF-8 path");
    let dir = tempfile::tempdir().expect("temp dir");
    let template = dir.path().join("reject.jinja");
    std::fs::write(
        &template,
        "{{ raise_exception('only tests use this template') }}",
    )
    .expect("write template");
    let template = template.to_str().expect("UTF-8 path");
    let output = slm(&["run", path, "--chat-template", template, "-n", "1", "Hi"]);
    assert!(!output.status.success(), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("only tests use this template"), "{stderr}");

    let shown = run_text(&["show", path]);
    assert!(shown.contains("--- chat template ---\n"), "{shown}");
    assert!(shown.contains("<|im_start|>"), "{shown}");
}
