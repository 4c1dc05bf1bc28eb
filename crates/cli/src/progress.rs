//! Download progress on stderr: a bar on a terminal, one line per file otherwise.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// Shows `store` downloads; hidden (apart from one line per file) when stderr is not a
/// terminal, so logs of scripts and CI stay readable.
pub struct BarProgress {
    bar: Option<ProgressBar>,
    interactive: bool,
}

impl BarProgress {
    /// A progress display for stderr.
    pub fn new() -> BarProgress {
        BarProgress {
            bar: None,
            interactive: std::io::stderr().is_terminal(),
        }
    }
}

impl store::Progress for BarProgress {
    fn start(&mut self, what: &str, total: Option<u64>) {
        if !self.interactive {
            eprintln!("{what}");
            return;
        }
        let bar = match total {
            Some(total) => {
                let bar = ProgressBar::new(total);
                let style = ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .map(|s| s.progress_chars("=> "))
                .unwrap_or_else(|_| ProgressStyle::default_bar());
                bar.set_style(style);
                bar
            }
            None => ProgressBar::new_spinner(),
        };
        bar.set_message(what.to_string());
        self.bar = Some(bar);
    }

    fn advance(&mut self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
