//! `slm tokenize`: token ids as a JSON array.

use anyhow::{Context, Result};

use super::{read_stdin, resolve_model};
use crate::args::TokenizeArgs;

/// Prints the ids of the text (or of stdin, byte for byte) as `[id, id, …]` on one line.
pub fn tokenize(args: TokenizeArgs) -> Result<()> {
    let path = resolve_model(&args.model)?;
    let tokenizer = engine::load_tokenizer(&path)
        .with_context(|| format!("cannot load the tokenizer of {}", args.model))?;
    let text = match args.text {
        Some(text) => text,
        None => read_stdin()?,
    };
    let ids = tokenizer.encode(&text, !args.no_bos, args.special);
    println!("{}", format_ids(&ids));
    Ok(())
}

/// `[1, 2, 3]`: the JSON array layout llama-tokenize prints with `--ids`.
fn format_ids(ids: &[u32]) -> String {
    let inner: Vec<String> = ids.iter().map(u32::to_string).collect();
    format!("[{}]", inner.join(", "))
}

#[cfg(test)]
mod tests {
    use super::format_ids;

    #[test]
    fn ids_format() {
        assert_eq!(format_ids(&[]), "[]");
        assert_eq!(format_ids(&[7]), "[7]");
        assert_eq!(format_ids(&[1, 22, 333]), "[1, 22, 333]");
    }
}
