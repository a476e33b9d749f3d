//! Turning generated token ids into text deltas that are always whole UTF-8 characters,
//! holding back text that might be the start of a stop string.

/// Accumulates decoded text and hands out only what is safe to print.
#[derive(Debug, Default)]
pub struct DeltaStream {
    stops: Vec<String>,
    /// Bytes of the decoded text already handed out.
    emitted: usize,
    stopped: bool,
}

/// What one step produced.
#[derive(Debug, PartialEq)]
pub struct Step {
    pub delta: String,
    /// A stop string was found; generation should end.
    pub stop: bool,
}

impl DeltaStream {
    pub fn new(stops: Vec<String>) -> Self {
        DeltaStream {
            stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
            emitted: 0,
            stopped: false,
        }
    }

    /// `text` is the decoding of every generated token so far. A trailing U+FFFD means the
    /// last token ended inside a multi-byte character: wait for the rest.
    pub fn push(&mut self, text: &str) -> Step {
        if self.stopped || text.len() < self.emitted || !text.is_char_boundary(self.emitted) {
            return Step {
                delta: String::new(),
                stop: self.stopped,
            };
        }
        let pending = &text[self.emitted..];
        if let Some(cut) = self
            .stops
            .iter()
            .filter_map(|s| pending.find(s.as_str()))
            .min()
        {
            self.stopped = true;
            let delta = pending[..cut].to_string();
            self.emitted += cut;
            return Step { delta, stop: true };
        }
        let mut safe = pending.trim_end_matches('\u{FFFD}').len();
        // Hold back a tail that could grow into a stop string.
        for s in &self.stops {
            for (i, _) in pending[..safe].char_indices() {
                if s.starts_with(&pending[i..safe]) {
                    safe = i;
                    break;
                }
            }
        }
        let delta = pending[..safe].to_string();
        self.emitted += safe;
        Step { delta, stop: false }
    }

    /// At the end of generation: whatever was held back (minus broken characters).
    pub fn finish(&mut self, text: &str) -> String {
        if self.stopped || text.len() < self.emitted || !text.is_char_boundary(self.emitted) {
            return String::new();
        }
        let rest = text[self.emitted..]
            .trim_end_matches('\u{FFFD}')
            .to_string();
        self.emitted = text.len();
        rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_back_broken_characters() {
        let mut s = DeltaStream::new(vec![]);
        assert_eq!(s.push("a\u{FFFD}").delta, "a");
        assert_eq!(s.push("aé").delta, "é");
    }

    #[test]
    fn cuts_at_stop_string() {
        let mut s = DeltaStream::new(vec!["User:".into()]);
        assert_eq!(s.push("Hi Us").delta, "Hi ");
        let step = s.push("Hi User: more");
        assert_eq!(step.delta, "");
        assert!(step.stop);
    }

    #[test]
    fn releases_false_alarm() {
        let mut s = DeltaStream::new(vec!["User:".into()]);
        assert_eq!(s.push("Us").delta, "");
        assert_eq!(s.push("Usage").delta, "Usage");
        assert_eq!(s.finish("Usage"), "");
    }
}
