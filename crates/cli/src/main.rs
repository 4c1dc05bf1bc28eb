//! `slm`: run, chat, serve and manage small language models on this machine.
fn main() {}
