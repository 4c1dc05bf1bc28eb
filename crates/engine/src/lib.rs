//! Sessions over a loaded model: sampling, chat templates, generation with stop
//! sequences, perplexity. The library API that the CLI and the server call.

pub mod chat;
pub mod perplexity;
mod rng;
pub mod sampler;
pub mod stop;

pub use chat::{render_chat, Message, Role, TemplateKind};
pub use sampler::{SampleError, Sampler, SamplerParams};
pub use stop::StopMatcher;
