//! `slm pull`, `list`, `show`, `rm`: the local model store.

use anyhow::{Context, Result};
use engine::ModelInfo;
use store::Store;

use super::resolve_model;
use crate::progress::BarProgress;

fn open_store() -> Result<Store> {
    Store::open_default().context("cannot open the model store")
}

/// Downloads a catalog model (if not already there) and prints its path.
pub fn pull(name: &str) -> Result<()> {
    let store = open_store()?;
    let path = store
        .pull(name, &mut BarProgress::new())
        .with_context(|| format!("cannot pull {name}"))?;
    println!("{}", path.display());
    Ok(())
}

/// Prints a table of the models in the store.
pub fn list() -> Result<()> {
    let store = open_store()?;
    let models = store.list().context("cannot list the model store")?;
    let rows: Vec<[String; 3]> = models
        .iter()
        .map(|m| {
            [
                m.name.clone(),
                human_size(m.size),
                m.path.display().to_string(),
            ]
        })
        .collect();
    let name_width = rows.iter().map(|r| r[0].len()).max().unwrap_or(0).max(4);
    let size_width = rows.iter().map(|r| r[1].len()).max().unwrap_or(0).max(4);
    println!("{:<name_width$}  {:>size_width$}  PATH", "NAME", "SIZE");
    for [name, size, path] in rows {
        println!("{name:<name_width$}  {size:>size_width$}  {path}");
    }
    Ok(())
}

/// Prints what a model file holds.
pub fn show(name: &str) -> Result<()> {
    let path = resolve_model(name)?;
    let info = ModelInfo::read(&path).with_context(|| format!("cannot read model {name}"))?;
    let or_unknown = |v: Option<u64>| v.map_or("unknown".to_string(), |v| v.to_string());
    if let Some(model_name) = &info.name {
        println!("name:            {model_name}");
    }
    println!("path:            {}", path.display());
    println!("architecture:    {}", info.architecture);
    println!(
        "parameters:      {} ({})",
        info.n_params,
        human_count(info.n_params)
    );
    let types: Vec<String> = info
        .tensor_types
        .iter()
        .map(|(name, count)| format!("{name} × {count}"))
        .collect();
    println!("tensor types:    {}", types.join(", "));
    println!("context length:  {}", or_unknown(info.context_length));
    println!("layers:          {}", or_unknown(info.n_layers));
    println!(
        "heads:           {} (kv {})",
        or_unknown(info.n_heads),
        or_unknown(info.n_kv_heads)
    );
    println!("embedding:       {}", or_unknown(info.n_embd));
    println!(
        "vocabulary:      {}",
        info.n_vocab
            .map_or("unknown".to_string(), |n| n.to_string())
    );
    match (&info.chat_template, &info.chat_template_tool_use) {
        (Some(_), None) => println!("chat template:   in the file (Jinja)"),
        (Some(_), Some(_)) => println!("chat template:   in the file (Jinja), and a tool_use one"),
        (None, _) => println!(
            "chat template:   none in the file; built-in {}",
            info.fallback_template.name
        ),
    }
    println!(
        "file size:       {} ({} bytes)",
        human_size(info.file_size),
        info.file_size
    );
    // The Jinja source chats are rendered with (unless --chat-template overrides it).
    println!("\n--- chat template ---\n{}", info.chat_template_source());
    if let Some(tool_use) = &info.chat_template_tool_use {
        println!("\n--- chat template (tool_use) ---\n{tool_use}");
    }
    Ok(())
}

/// Removes a model from the store.
pub fn remove(name: &str) -> Result<()> {
    let store = open_store()?;
    store
        .remove(name)
        .with_context(|| format!("cannot remove {name}"))?;
    eprintln!("removed {name}");
    Ok(())
}

/// Bytes in binary units: `94 MiB`.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A count in thousands, millions or billions: `494.0M`.
fn human_count(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.2}B", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1}M", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1}K", n / 1e3)
    } else {
        format!("{n}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(98_362_432), "93.8 MiB");
        assert_eq!(human_count(494_032_768), "494.0M");
        assert_eq!(human_count(1_543_714_304), "1.54B");
    }
}
