//! `slm serve`'s flags and start-up failures. The server itself is tested end to end by
//! scripts/test-serve.sh with real clients.

use crate::common::{describe, model_path, models_enabled, slm, SMOLLM2};

#[test]
fn a_bad_size_is_a_usage_error() {
    let output = slm(&["serve", "--max-body", "12XB", "model.gguf"]);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("12XB"));
}

#[test]
fn help_names_the_default_port() {
    let output = slm(&["serve", "--help"]);
    assert!(output.status.success(), "{}", describe(&output));
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("8377"), "{help}");
    assert!(help.contains("SLM_API_KEY"), "{help}");
}

#[test]
fn a_host_that_is_no_address_is_refused() {
    if !models_enabled("a_host_that_is_no_address_is_refused") {
        return;
    }
    let model = model_path(SMOLLM2);
    let output = slm(&[
        "serve",
        model.to_str().expect("utf-8 path"),
        "--host",
        "localhost.invalid",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not an IP address"));
}

#[test]
fn a_port_in_use_is_refused() {
    if !models_enabled("a_port_in_use_is_refused") {
        return;
    }
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = taken.local_addr().expect("bound").port().to_string();
    let model = model_path(SMOLLM2);
    let output = slm(&[
        "serve",
        model.to_str().expect("utf-8 path"),
        "--port",
        &port,
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot listen"));
}
