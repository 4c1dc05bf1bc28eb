//! The minijinja environment chat templates run in, set up as transformers sets up jinja2
//! (`_compile_jinja_template`): `trim_blocks`, `lstrip_blocks`, loop controls, its
//! `tojson`, `raise_exception` and `strftime_now`, lenient undefined values, no
//! autoescaping, Python's string/dict/list methods and Python's way of printing values.

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State, UndefinedBehavior};

use super::json::{tojson, write_repr};
use super::strftime::{strftime, unix_now};

/// Marks the errors `raise_exception` makes, to tell them from minijinja's own.
pub(super) const RAISED_PREFIX: &str = "\u{0}raise_exception\u{0}";

/// A fresh environment with the transformers set-up. `fixed_now` pins the time
/// `strftime_now` reports (seconds since the epoch) for reproducible renders.
pub(super) fn new_environment(fixed_now: Option<i64>) -> Environment<'static> {
    let mut env = Environment::new();
    let syntax = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
        .expect("the default delimiters are valid");
    env.set_syntax(syntax);
    env.set_undefined_behavior(UndefinedBehavior::Lenient);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_formatter(format_value);
    env.set_unknown_method_callback(unknown_method);
    env.add_filter("tojson", tojson);
    env.add_function("raise_exception", raise_exception);
    env.add_function("strftime_now", move |format: &str| {
        strftime(format, fixed_now.unwrap_or_else(unix_now))
    });
    env
}

/// `raise_exception(message)`: the template rejects the conversation.
fn raise_exception(message: Option<Value>) -> Result<Value, Error> {
    let message = match message {
        Some(v) if v.kind() == ValueKind::String => v.as_str().unwrap_or("").to_owned(),
        Some(v) => v.to_string(),
        None => String::new(),
    };
    Err(Error::new(
        ErrorKind::InvalidOperation,
        format!("{RAISED_PREFIX}{message}"),
    ))
}

/// Prints `{{ value }}` as jinja2 does: strings as they are, `None`/`True`/`False`,
/// containers as Python's `repr`, undefined values as nothing.
fn format_value(
    out: &mut minijinja::Output,
    _state: &mut State,
    value: &Value,
) -> Result<(), Error> {
    let text = match value.kind() {
        ValueKind::Undefined => return Ok(()),
        ValueKind::String => {
            return out
                .write_str(value.as_str().unwrap_or(""))
                .map_err(Error::from)
        }
        ValueKind::None | ValueKind::Bool | ValueKind::Seq | ValueKind::Map => {
            let mut s = String::new();
            write_repr(&mut s, value);
            s
        }
        ValueKind::Number if !value.is_integer() => {
            let mut s = String::new();
            write_repr(&mut s, value);
            s
        }
        _ => value.to_string(),
    };
    out.write_str(&text).map_err(Error::from)
}

/// Python methods on values (`s.strip()`, `d.items()`, …): minijinja-contrib's set, plus
/// the few real templates use that it lacks.
fn unknown_method(
    state: &mut State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    match (value.kind(), method) {
        (ValueKind::String, "removeprefix") | (ValueKind::String, "removesuffix") => {
            let s = value.as_str().unwrap_or("");
            let affix = args.first().and_then(|a| a.as_str()).unwrap_or("");
            let result = if method == "removeprefix" {
                s.strip_prefix(affix)
            } else {
                s.strip_suffix(affix)
            };
            Ok(Value::from(result.unwrap_or(s)))
        }
        (ValueKind::String, "rsplit") => rsplit(value.as_str().unwrap_or(""), args),
        _ => minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args),
    }
}

/// `str.rsplit(sep=None, maxsplit=-1)`.
fn rsplit(s: &str, args: &[Value]) -> Result<Value, Error> {
    let sep = args
        .first()
        .filter(|v| !v.is_none())
        .and_then(|v| v.as_str());
    let max = args
        .get(1)
        .and_then(|v| i64::try_from(v.clone()).ok())
        .filter(|&n| n >= 0)
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let mut parts: Vec<&str> = match (sep, max) {
        (Some(""), _) => {
            return Err(Error::new(ErrorKind::InvalidOperation, "empty separator"));
        }
        (Some(sep), Some(n)) => s.rsplitn(n.saturating_add(1), sep).collect(),
        (Some(sep), None) => s.rsplit(sep).collect(),
        (None, Some(n)) => {
            let mut parts = Vec::new();
            let mut rest = s.trim_end();
            while parts.len() < n {
                match rest.rfind(char::is_whitespace) {
                    Some(at) => {
                        parts.push(rest[at..].trim_start());
                        rest = rest[..at].trim_end();
                    }
                    None => break,
                }
            }
            if !rest.is_empty() {
                parts.push(rest);
            }
            parts
        }
        (None, None) => s.split_whitespace().rev().collect(),
    };
    parts.reverse();
    Ok(Value::from(
        parts.into_iter().map(Value::from).collect::<Vec<_>>(),
    ))
}
