//! Sessions over a loaded model: sampling, chat templates, generation with stop
//! sequences, perplexity. The library API that the CLI and the server call.
