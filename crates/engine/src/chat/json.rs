//! Python's `json.dumps` over template values, and Python's `repr` for printing containers:
//! chat templates were written against transformers' jinja2, whose `tojson` filter is
//! `json.dumps(x, ensure_ascii=False, indent=indent, separators=separators,
//! sort_keys=sort_keys)` and whose `{{ x }}` prints a dict or list as Python does.

use std::fmt::Write;

use minijinja::value::{Kwargs, Rest, ValueKind};
use minijinja::{Error, ErrorKind, Value};

/// How `json.dumps` was asked to write.
struct DumpOptions {
    ensure_ascii: bool,
    /// `None`: one line; `Some(unit)`: pretty, each level indented by `unit`.
    indent: Option<String>,
    item_separator: String,
    key_separator: String,
    sort_keys: bool,
}

/// The `tojson` filter: `tojson(x, ensure_ascii=False, indent=None, separators=None,
/// sort_keys=False)`, positionally or by keyword, as transformers defines it.
pub(super) fn tojson(value: &Value, args: Rest<Value>, kwargs: Kwargs) -> Result<String, Error> {
    let names = ["ensure_ascii", "indent", "separators", "sort_keys"];
    if args.len() > names.len() {
        return Err(Error::new(
            ErrorKind::TooManyArguments,
            "tojson takes at most 4 arguments",
        ));
    }
    let mut given: [Option<Value>; 4] = Default::default();
    for (slot, arg) in given.iter_mut().zip(args.iter()) {
        *slot = Some(arg.clone());
    }
    for (slot, name) in given.iter_mut().zip(names) {
        if let Some(v) = kwargs.get::<Option<Value>>(name)? {
            *slot = Some(v);
        }
    }
    kwargs.assert_all_used()?;
    let [ensure_ascii, indent, separators, sort_keys] = given;
    let indent = match indent.filter(|v| !v.is_none() && !v.is_undefined()) {
        None => None,
        Some(v) if v.kind() == ValueKind::String => Some(v.as_str().unwrap_or("").to_owned()),
        Some(v) => {
            let n = i64::try_from(v.clone()).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    "tojson indent must be an integer or a string",
                )
            })?;
            Some(" ".repeat(usize::try_from(n).unwrap_or(0)))
        }
    };
    let (item_separator, key_separator) = match separators.filter(|v| !v.is_none()) {
        None if indent.is_some() => (",".to_owned(), ": ".to_owned()),
        None => (", ".to_owned(), ": ".to_owned()),
        Some(pair) => {
            let parts: Vec<Value> = pair.try_iter()?.collect();
            match parts.as_slice() {
                [a, b] => (a.to_string(), b.to_string()),
                _ => {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        "tojson separators must be a pair of strings",
                    ))
                }
            }
        }
    };
    let options = DumpOptions {
        ensure_ascii: ensure_ascii.is_some_and(|v| v.is_true()),
        indent,
        item_separator,
        key_separator,
        sort_keys: sort_keys.is_some_and(|v| v.is_true()),
    };
    let mut out = String::new();
    dump(&mut out, value, &options, 0)?;
    Ok(out)
}

fn dump(out: &mut String, value: &Value, options: &DumpOptions, depth: usize) -> Result<(), Error> {
    match value.kind() {
        ValueKind::Undefined => Err(Error::new(
            ErrorKind::InvalidOperation,
            "Object of type Undefined is not JSON serializable",
        )),
        ValueKind::None => {
            out.push_str("null");
            Ok(())
        }
        ValueKind::Bool => {
            out.push_str(if value.is_true() { "true" } else { "false" });
            Ok(())
        }
        ValueKind::Number => {
            write_number(out, value, true);
            Ok(())
        }
        ValueKind::String => {
            write_json_string(out, value.as_str().unwrap_or(""), options.ensure_ascii);
            Ok(())
        }
        ValueKind::Bytes => Err(Error::new(
            ErrorKind::InvalidOperation,
            "Object of type bytes is not JSON serializable",
        )),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = value.try_iter()?.collect();
            dump_container(out, ('[', ']'), items.len(), options, depth, |out, i| {
                dump(out, &items[i], options, depth + 1)
            })
        }
        ValueKind::Map => {
            let mut entries: Vec<(String, Value)> = Vec::new();
            for key in value.try_iter()? {
                let item = value.get_item(&key)?;
                entries.push((json_key(&key)?, item));
            }
            if options.sort_keys {
                entries.sort_by(|a, b| a.0.cmp(&b.0));
            }
            dump_container(out, ('{', '}'), entries.len(), options, depth, |out, i| {
                let (key, item) = &entries[i];
                write_json_string(out, key, options.ensure_ascii);
                out.push_str(&options.key_separator);
                dump(out, item, options, depth + 1)
            })
        }
        _ => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("Object of type {} is not JSON serializable", value.kind()),
        )),
    }
}

/// Writes `n` items between `brackets`, one line each when indenting.
fn dump_container(
    out: &mut String,
    brackets: (char, char),
    n: usize,
    options: &DumpOptions,
    depth: usize,
    mut item: impl FnMut(&mut String, usize) -> Result<(), Error>,
) -> Result<(), Error> {
    out.push(brackets.0);
    if n == 0 {
        out.push(brackets.1);
        return Ok(());
    }
    for i in 0..n {
        if i > 0 {
            out.push_str(&options.item_separator);
        }
        if let Some(unit) = &options.indent {
            out.push('\n');
            out.push_str(&unit.repeat(depth + 1));
        }
        item(out, i)?;
    }
    if let Some(unit) = &options.indent {
        out.push('\n');
        out.push_str(&unit.repeat(depth));
    }
    out.push(brackets.1);
    Ok(())
}

/// A dict key as `json.dumps` writes it: strings as they are, numbers, booleans and None
/// converted; anything else is an error, as in Python.
fn json_key(key: &Value) -> Result<String, Error> {
    match key.kind() {
        ValueKind::String => Ok(key.as_str().unwrap_or("").to_owned()),
        ValueKind::None => Ok("null".to_owned()),
        ValueKind::Bool => Ok(if key.is_true() { "true" } else { "false" }.to_owned()),
        ValueKind::Number => {
            let mut s = String::new();
            write_number(&mut s, key, true);
            Ok(s)
        }
        kind => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("keys must be str, int, float, bool or None, not {kind}"),
        )),
    }
}

/// A number as Python prints it: integers in full, floats with their shortest repr and a
/// `.0` when whole. `json` spells the non-finite ones `Infinity`/`NaN`, `repr` `inf`/`nan`.
fn write_number(out: &mut String, value: &Value, json: bool) {
    if value.is_integer() {
        let _ = write!(out, "{value}");
        return;
    }
    let Ok(f) = f64::try_from(value.clone()) else {
        let _ = write!(out, "{value}");
        return;
    };
    if f.is_nan() {
        out.push_str(if json { "NaN" } else { "nan" });
    } else if f.is_infinite() {
        let sign = if f < 0.0 { "-" } else { "" };
        let _ = write!(out, "{sign}{}", if json { "Infinity" } else { "inf" });
    } else {
        out.push_str(&python_float_repr(f));
    }
}

/// Python's `repr(float)`: the shortest round-tripping digits, in exponent form below
/// 1e-4 and from 1e16 on.
fn python_float_repr(f: f64) -> String {
    let magnitude = f.abs();
    if magnitude != 0.0 && !(1e-4..1e16).contains(&magnitude) {
        let s = format!("{f:e}");
        let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
        let exponent: i32 = exponent.parse().unwrap_or(0);
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs());
    }
    let s = format!("{f}");
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

/// A JSON string literal as Python's `json` writes it.
fn write_json_string(out: &mut String, s: &str, ensure_ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if ensure_ascii && !c.is_ascii() => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `repr` of a value inside a container (strings quoted), or of a container.
pub(super) fn write_repr(out: &mut String, value: &Value) {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("None"),
        ValueKind::Bool => out.push_str(if value.is_true() { "True" } else { "False" }),
        ValueKind::Number => write_number(out, value, false),
        ValueKind::String => write_python_string(out, value.as_str().unwrap_or("")),
        ValueKind::Seq | ValueKind::Iterable => {
            out.push('[');
            if let Ok(items) = value.try_iter() {
                for (i, item) in items.enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_repr(out, &item);
                }
            }
            out.push(']');
        }
        ValueKind::Map => {
            out.push('{');
            if let Ok(keys) = value.try_iter() {
                for (i, key) in keys.enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_repr(out, &key);
                    out.push_str(": ");
                    write_repr(out, &value.get_item(&key).unwrap_or_default());
                }
            }
            out.push('}');
        }
        _ => {
            let _ = write!(out, "{value}");
        }
    }
}

/// Python's `repr(str)`: single quotes unless the text has a single quote and no double.
fn write_python_string(out: &mut String, s: &str) {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
}
