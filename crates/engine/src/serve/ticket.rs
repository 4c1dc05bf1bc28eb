//! Handles of submitted requests: their event streams and cancellation.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::types::{Embeddings, Event};

/// A flag the handle sets and the engine loop reads before every step.
#[derive(Debug, Clone, Default)]
pub(crate) struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    pub(crate) fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The handle of one generation request. Dropping it (or calling [`Ticket::cancel`])
/// cancels the generation; the engine notices before its next step and frees the
/// sequence's KV blocks at once.
#[derive(Debug)]
pub struct Ticket {
    events: mpsc::UnboundedReceiver<Event>,
    cancel: CancelFlag,
}

impl Ticket {
    pub(crate) fn new(events: mpsc::UnboundedReceiver<Event>, cancel: CancelFlag) -> Ticket {
        Ticket { events, cancel }
    }

    /// The next event; `None` after the last one (a `Done` or an `Error`).
    pub async fn next(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// [`Ticket::next`] for synchronous callers. Must not be called on an async
    /// runtime's thread (it blocks).
    pub fn blocking_next(&mut self) -> Option<Event> {
        self.events.blocking_recv()
    }

    /// Asks the engine to stop this request; it then ends with
    /// [`super::FinishReason::Cancelled`] (unless it finished first).
    pub fn cancel(&self) {
        self.cancel.cancel();
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// What an embedding request resolves to: the vectors, or why it failed.
pub type EmbedResult = Result<Embeddings, String>;

/// The handle of one embedding request. Dropping it cancels the request.
#[derive(Debug)]
pub struct EmbedTicket {
    result: oneshot::Receiver<EmbedResult>,
    cancel: CancelFlag,
}

impl EmbedTicket {
    pub(crate) fn new(result: oneshot::Receiver<EmbedResult>, cancel: CancelFlag) -> EmbedTicket {
        EmbedTicket { result, cancel }
    }

    /// Waits for the vectors.
    pub async fn wait(mut self) -> EmbedResult {
        match (&mut self.result).await {
            Ok(result) => result,
            Err(_) => Err(ENGINE_GONE.to_string()),
        }
    }

    /// [`EmbedTicket::wait`] for synchronous callers. Must not be called on an async
    /// runtime's thread (it blocks).
    pub fn blocking_wait(mut self) -> EmbedResult {
        let result = std::mem::replace(&mut self.result, oneshot::channel().1);
        result
            .blocking_recv()
            .unwrap_or_else(|_| Err(ENGINE_GONE.to_string()))
    }

    /// Asks the engine to drop this request.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }
}

impl Drop for EmbedTicket {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// The error of a request whose engine loop ended without answering.
const ENGINE_GONE: &str = "the engine stopped before answering";
