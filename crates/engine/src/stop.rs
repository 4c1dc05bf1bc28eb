//! Stop sequences over streamed text: text that might be the start of a stop string is held
//! back until it is known not to be, so a stop string never reaches the caller, not even in
//! part.

#[cfg(test)]
mod tests;

/// What [`StopMatcher::push`] released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Released {
    /// Text safe to show now (may be empty).
    pub text: String,
    /// True when a stop string was found: `text` ends just before it and generation should
    /// end.
    pub stopped: bool,
}

/// Watches generated text for any of a set of stop strings.
#[derive(Debug, Clone, Default)]
pub struct StopMatcher {
    stops: Vec<String>,
    /// Text received but not yet released: it ends with a possible start of a stop string.
    held: String,
}

impl StopMatcher {
    /// A matcher for these stop strings; empty strings are ignored.
    pub fn new(stops: &[String]) -> StopMatcher {
        StopMatcher {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            held: String::new(),
        }
    }

    /// Adds newly generated text; returns what can be shown and whether a stop string
    /// completed.
    pub fn push(&mut self, text: &str) -> Released {
        self.held.push_str(text);
        if self.stops.is_empty() {
            return Released {
                text: std::mem::take(&mut self.held),
                stopped: false,
            };
        }
        // The earliest complete stop string ends generation.
        let first_stop = self
            .stops
            .iter()
            .filter_map(|stop| self.held.find(stop.as_str()))
            .min();
        if let Some(at) = first_stop {
            let text = self.held[..at].to_string();
            self.held.clear();
            return Released {
                text,
                stopped: true,
            };
        }
        let keep = self.partial_suffix_len();
        let release_to = self.held.len() - keep;
        let text = self.held[..release_to].to_string();
        self.held.drain(..release_to);
        Released {
            text,
            stopped: false,
        }
    }

    /// The held-back text, released at the end of generation (no stop string came).
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// The length of the longest suffix of the held text that is a proper prefix of some
    /// stop string. Such a suffix starts at a char boundary: it equals the start of a valid
    /// UTF-8 string.
    fn partial_suffix_len(&self) -> usize {
        let held = self.held.as_bytes();
        let mut longest = 0;
        for stop in &self.stops {
            let stop = stop.as_bytes();
            let max = stop.len().saturating_sub(1).min(held.len());
            for len in (longest + 1..=max).rev() {
                if held[held.len() - len..] == stop[..len] {
                    longest = len;
                    break;
                }
            }
        }
        longest
    }
}
