//! Streamed text to content and calls, as the text comes.
//!
//! Plain text is released at once, except a tail that could be the start of the opener
//! (held until the next piece tells). Inside a call, a small JSON scanner follows the top
//! object: once its `name` string is complete the call starts (one event with id and
//! name), then the raw text of its arguments object is released piece by piece. When the
//! object closes, the whole call is parsed as [`super::parse`] would; a call that fails
//! then comes back as an [`StreamEvent::Invalid`] with its raw text and the reason.

use serde_json::Value;

use super::parse::to_call;
use super::{new_call_id, Syntax, ToolFormat};
use crate::chat::ToolCall;

/// What the stream parser yields.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// Plain text.
    Text(String),
    /// A call begins: its index in the response, its fresh id, the function's name.
    CallStart {
        /// 0, 1, … in the order of the calls.
        index: usize,
        /// `call_…`.
        id: String,
        /// The function.
        name: String,
    },
    /// A piece of a call's arguments (JSON text; the pieces of one call concatenate to
    /// its arguments object).
    CallArguments {
        /// The call.
        index: usize,
        /// The next piece.
        fragment: String,
    },
    /// A call is complete and parsed.
    CallEnd {
        /// The call.
        index: usize,
        /// The call, with the id of its start and its parsed arguments.
        call: ToolCall,
    },
    /// Text that opened a call but does not parse as one: the raw text and why.
    Invalid {
        /// Everything from the opener on.
        text: String,
        /// Why it is not a call.
        reason: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Plain text.
    Text,
    /// After the opener: white space, then `[` (array formats) or `{`.
    BeforeBody,
    /// Inside an array of calls, before an object.
    BeforeObject,
    /// Inside a call's object.
    InObject,
    /// After a call's object: `,` or `]` (arrays), `;` or another object (bare), the closer.
    AfterObject,
    /// Expecting the closer.
    Closer,
}

/// Where the JSON scanner is within the top object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Key,
    Colon,
    Value,
    InValue,
}

/// The incremental tool-call parser of one output.
#[derive(Debug)]
pub struct StreamParser {
    syntax: Syntax,
    state: State,
    /// Text received but not yet consumed.
    input: String,
    /// Anything but white space has been released as text.
    released_text: bool,
    /// The raw text of the call region being read (from the opener on).
    raw: String,
    /// Calls started so far (the next call's index).
    n_calls: usize,
    object: ObjectScan,
}

/// The scan of one call object.
#[derive(Debug, Default)]
struct ObjectScan {
    text: String,
    depth: usize,
    in_string: bool,
    escape: bool,
    expect: Option<Expect>,
    token_start: usize,
    key: Option<String>,
    name: Option<String>,
    id: Option<String>,
    /// Byte range of the arguments value in `text` (end set once it is complete).
    arguments_start: Option<usize>,
    arguments_end: Option<usize>,
    /// Bytes of `text` already released as argument pieces.
    arguments_sent: usize,
}

impl StreamParser {
    /// A parser for one output in `format`.
    pub fn new(format: ToolFormat) -> StreamParser {
        StreamParser {
            syntax: format.syntax(),
            state: State::Text,
            input: String::new(),
            released_text: false,
            raw: String::new(),
            n_calls: 0,
            object: ObjectScan::default(),
        }
    }

    /// Takes the next piece of generated text.
    pub fn push(&mut self, piece: &str) -> Vec<StreamEvent> {
        self.input.push_str(piece);
        let mut events = Vec::new();
        self.run(&mut events, false);
        events
    }

    /// The output ended: releases what was held. A call cut short is an
    /// [`StreamEvent::Invalid`].
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        let mut events = Vec::new();
        self.run(&mut events, true);
        match self.state {
            // A list or block of complete calls that lacks its end still counts.
            State::Text | State::AfterObject | State::Closer => {
                let rest = std::mem::take(&mut self.input);
                self.text(rest, &mut events);
            }
            State::BeforeBody | State::BeforeObject | State::InObject => {
                let mut text = std::mem::take(&mut self.raw);
                text.push_str(&std::mem::take(&mut self.input));
                events.push(StreamEvent::Invalid {
                    text,
                    reason: "the output ended inside a tool call".into(),
                });
            }
        }
        self.state = State::Text;
        events
    }

    fn text(&mut self, text: String, events: &mut Vec<StreamEvent>) {
        if text.is_empty() {
            return;
        }
        if !text.trim().is_empty() {
            self.released_text = true;
        }
        match events.last_mut() {
            Some(StreamEvent::Text(last)) => last.push_str(&text),
            _ => events.push(StreamEvent::Text(text)),
        }
    }

    /// Consumes input until it needs more; `at_end` lets held text go.
    fn run(&mut self, events: &mut Vec<StreamEvent>, at_end: bool) {
        loop {
            let progressed = match self.state {
                State::Text => self.run_text(events, at_end),
                State::BeforeBody | State::BeforeObject => self.run_before(events),
                State::InObject => self.run_object(events),
                State::AfterObject => self.run_after(events),
                State::Closer => self.run_closer(at_end),
            };
            if !progressed {
                self.release_arguments(events);
                return;
            }
        }
    }

    fn run_text(&mut self, events: &mut Vec<StreamEvent>, at_end: bool) -> bool {
        if self.input.is_empty() {
            return false;
        }
        if self.syntax.bare_json && !self.released_text {
            let trimmed = self.input.trim_start();
            if trimmed.is_empty() && !at_end {
                return false;
            }
            if trimmed.starts_with('{') {
                let skip = self.input.len() - trimmed.len();
                self.input.drain(..skip);
                self.raw.clear();
                self.start_object();
                return true;
            }
        }
        let opener = self.syntax.opener;
        if let Some(at) = self.input.find(opener) {
            let before: String = self.input.drain(..at).collect();
            self.text(before, events);
            self.input.drain(..opener.len());
            self.raw = opener.to_owned();
            self.state = State::BeforeBody;
            return true;
        }
        let keep = if at_end {
            0
        } else {
            held_prefix(&self.input, opener)
        };
        let release = self.input.len() - keep;
        if release == 0 {
            return false;
        }
        let text: String = self.input.drain(..release).collect();
        self.text(text, events);
        false
    }

    fn run_before(&mut self, events: &mut Vec<StreamEvent>) -> bool {
        let Some(c) = self.input.chars().next() else {
            return false;
        };
        if c.is_whitespace() {
            self.consume(c);
            return true;
        }
        let wants_array = self.state == State::BeforeBody && self.syntax.array;
        match c {
            '[' if wants_array => {
                self.consume(c);
                self.state = State::BeforeObject;
            }
            '{' if !wants_array => self.start_object(),
            _ => self.fail(
                events,
                format!("expected a JSON call after {}", self.syntax.opener),
            ),
        }
        true
    }

    fn run_after(&mut self, events: &mut Vec<StreamEvent>) -> bool {
        let Some(c) = self.input.chars().next() else {
            return false;
        };
        if c.is_whitespace() {
            self.consume(c);
            return true;
        }
        match (self.syntax.array, c) {
            (true, ',') => {
                self.consume(c);
                self.state = State::BeforeObject;
            }
            (true, ']') => {
                self.consume(c);
                self.state = State::Closer;
            }
            (true, _) => self.fail(events, "expected , or ] after a call in the list".into()),
            (false, ';') if self.syntax.chains_bare_calls() => self.consume(c),
            (false, '{') if self.syntax.chains_bare_calls() => self.start_object(),
            (false, _) => self.state = State::Closer,
        }
        true
    }

    fn run_closer(&mut self, at_end: bool) -> bool {
        let closer = self.syntax.closer;
        if closer.is_empty() {
            self.end_region();
            return true;
        }
        let trimmed = self.input.trim_start();
        if trimmed.starts_with(closer) {
            let skip = self.input.len() - trimmed.len() + closer.len();
            self.input.drain(..skip);
            self.end_region();
            return true;
        }
        let may_come = closer.starts_with(trimmed) && !at_end;
        if may_come {
            return false;
        }
        // No closer: the call stands, what follows is text.
        self.end_region();
        true
    }

    fn end_region(&mut self) {
        self.raw.clear();
        self.state = State::Text;
    }

    fn consume(&mut self, c: char) {
        self.input.drain(..c.len_utf8());
        self.raw.push(c);
    }

    fn fail(&mut self, events: &mut Vec<StreamEvent>, reason: String) {
        // What follows the failure stays in the input, read again as text.
        let text = std::mem::take(&mut self.raw);
        events.push(StreamEvent::Invalid { text, reason });
        self.state = State::Text;
        self.released_text = true;
    }

    fn start_object(&mut self) {
        self.object = ObjectScan::default();
        self.state = State::InObject;
    }

    fn run_object(&mut self, events: &mut Vec<StreamEvent>) -> bool {
        let mut closed = false;
        let mut consumed = 0;
        for c in self.input.chars() {
            consumed += c.len_utf8();
            self.raw.push(c);
            if self.object.step(c) {
                closed = true;
                break;
            }
        }
        self.input.drain(..consumed);
        self.note_name(events);
        if !closed {
            return false;
        }
        self.release_arguments(events);
        self.close_object(events);
        true
    }

    /// Starts the call once its name is known.
    fn note_name(&mut self, events: &mut Vec<StreamEvent>) {
        if self.object.id.is_some() {
            return;
        }
        if let Some(name) = self.object.name.clone() {
            let id = new_call_id();
            self.object.id = Some(id.clone());
            events.push(StreamEvent::CallStart {
                index: self.n_calls,
                id,
                name,
            });
        }
    }

    /// Releases the arguments text read since the last piece (objects only: arguments
    /// written as a string are sent whole, decoded, at the end).
    fn release_arguments(&mut self, events: &mut Vec<StreamEvent>) {
        let object = &mut self.object;
        if self.state != State::InObject || object.id.is_none() {
            return;
        }
        let Some(start) = object.arguments_start else {
            return;
        };
        if !object.text[start..].starts_with('{') {
            return;
        }
        let end = object.arguments_end.unwrap_or(object.text.len());
        let from = object.arguments_sent.max(start);
        if end > from {
            let fragment = object.text[from..end].to_owned();
            object.arguments_sent = end;
            events.push(StreamEvent::CallArguments {
                index: self.n_calls,
                fragment,
            });
        }
    }

    fn close_object(&mut self, events: &mut Vec<StreamEvent>) {
        let parsed = serde_json::from_str::<Value>(&self.object.text)
            .map_err(|e| format!("the call is not valid JSON ({e})"))
            .and_then(|value| to_call(value, self.syntax, self.n_calls).map_err(|e| e.to_string()));
        let mut call = match parsed {
            Ok(call) => call,
            Err(reason) => {
                let is_bare = self.raw.trim_start().starts_with('{') && self.syntax.bare_json;
                if is_bare && self.object.id.is_none() {
                    // A JSON answer that is not a call: plain text.
                    let text = std::mem::take(&mut self.raw);
                    self.state = State::Text;
                    self.text(text, events);
                } else {
                    self.fail(events, reason);
                }
                return;
            }
        };
        let index = self.n_calls;
        match self.object.id.clone() {
            Some(id) => call.id = id,
            None => events.push(StreamEvent::CallStart {
                index,
                id: call.id.clone(),
                name: call.name.clone(),
            }),
        }
        if self.object.arguments_sent == 0 {
            events.push(StreamEvent::CallArguments {
                index,
                fragment: call.arguments.to_string(),
            });
        }
        events.push(StreamEvent::CallEnd { index, call });
        self.n_calls += 1;
        self.released_text = true;
        self.state = State::AfterObject;
    }
}

impl ObjectScan {
    /// Reads one character of the object; true when the top object closes with it.
    fn step(&mut self, c: char) -> bool {
        let at = self.text.len();
        self.text.push(c);
        if self.in_string {
            if self.escape {
                self.escape = false;
            } else if c == '\\' {
                self.escape = true;
            } else if c == '"' {
                self.in_string = false;
                if self.depth == 1 && self.expect == Some(Expect::Key) {
                    let key = &self.text[self.token_start..];
                    self.key = serde_json::from_str::<String>(key).ok();
                    self.expect = Some(Expect::Colon);
                }
            }
            return false;
        }
        match c {
            '"' => {
                self.in_string = true;
                self.begin_token(at);
            }
            '{' | '[' => {
                if self.depth == 0 {
                    self.expect = Some(Expect::Key);
                } else {
                    self.begin_token(at);
                }
                self.depth += 1;
            }
            '}' | ']' => {
                if self.depth == 1 {
                    self.end_value(at);
                }
                self.depth = self.depth.saturating_sub(1);
                return self.depth == 0;
            }
            ':' if self.depth == 1 && self.expect == Some(Expect::Colon) => {
                self.expect = Some(Expect::Value);
            }
            ',' if self.depth == 1 => {
                self.end_value(at);
                self.expect = Some(Expect::Key);
            }
            c if c.is_whitespace() => {}
            _ => self.begin_token(at),
        }
        false
    }

    /// A string, container or scalar begins at byte `at`.
    fn begin_token(&mut self, at: usize) {
        if self.depth != 1 {
            return;
        }
        match self.expect {
            Some(Expect::Key) => self.token_start = at,
            Some(Expect::Value) => {
                self.token_start = at;
                self.expect = Some(Expect::InValue);
                if self.is_arguments_key() {
                    self.arguments_start = Some(at);
                }
            }
            _ => {}
        }
    }

    fn is_arguments_key(&self) -> bool {
        matches!(self.key.as_deref(), Some("arguments" | "parameters"))
    }

    /// The top-level value that began at `token_start` ends before byte `at`.
    fn end_value(&mut self, at: usize) {
        if self.expect != Some(Expect::InValue) {
            return;
        }
        let value = self.text[self.token_start..at].trim_end();
        let end = self.token_start + value.len();
        if self.key.as_deref() == Some("name") {
            self.name = serde_json::from_str::<String>(value).ok();
        } else if self.is_arguments_key() && self.arguments_start == Some(self.token_start) {
            self.arguments_end = Some(end);
        }
        self.expect = None;
    }
}

/// How many bytes at the end of `text` could be the start of `opener`.
fn held_prefix(text: &str, opener: &str) -> usize {
    let longest = opener.len().saturating_sub(1).min(text.len());
    (1..=longest)
        .rev()
        .find(|&n| {
            text.is_char_boundary(text.len() - n) && opener.starts_with(&text[text.len() - n..])
        })
        .unwrap_or(0)
}
