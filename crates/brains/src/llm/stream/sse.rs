//! Server-sent events, incrementally: bytes in as they arrive (split
//! anywhere, even inside a UTF-8 character or a `\r\n`), whole events out.
//! Only what the two wire formats use: `event:` and `data:` fields (several
//! `data:` lines joined by `\n`), comments (`:` lines, keep-alives) skipped,
//! `id:` and `retry:` ignored; a blank line ends an event.

/// One event: its `event:` name (empty when none was given) and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub name: String,
    pub data: String,
}

#[derive(Debug, Default)]
pub struct Parser {
    /// Bytes of a line not complete yet.
    line: Vec<u8>,
    /// The previous chunk ended with `\r`: a `\n` starting the next one
    /// belongs to the same line break.
    after_cr: bool,
    name: String,
    data: Option<String>,
}

impl Parser {
    /// Feeds a chunk; returns the events it completed.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Event> {
        let mut out = Vec::new();
        for &b in bytes {
            let after_cr = std::mem::take(&mut self.after_cr);
            match b {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => {
                    self.after_cr = b == b'\r';
                    let line = std::mem::take(&mut self.line);
                    self.line_done(&String::from_utf8_lossy(&line), &mut out);
                }
                _ => self.line.push(b),
            }
        }
        out
    }

    /// Bytes received but not yet part of a complete event (a stream cut
    /// short leaves some).
    pub fn pending(&self) -> bool {
        !self.line.is_empty() || self.data.is_some()
    }

    fn line_done(&mut self, line: &str, out: &mut Vec<Event>) {
        if line.is_empty() {
            if let Some(data) = self.data.take() {
                out.push(Event {
                    name: std::mem::take(&mut self.name),
                    data,
                });
            }
            self.name.clear();
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => self.name = value.to_string(),
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(name: &str, data: &str) -> Event {
        Event {
            name: name.into(),
            data: data.into(),
        }
    }

    #[test]
    fn events_split_anywhere_come_out_whole() {
        let text = ": keep-alive\r\nevent: ping\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\ndata: é\n\nid: 3\nretry: 9\ndata:x\n\n";
        let want = vec![ev("ping", "{\"a\":\n1}"), ev("", "é"), ev("", "x")];
        let bytes = text.as_bytes();
        for size in 1..=bytes.len() {
            let mut p = Parser::default();
            let got: Vec<Event> = bytes.chunks(size).flat_map(|c| p.feed(c)).collect();
            assert_eq!(got, want, "chunks of {size}");
            assert!(!p.pending());
        }
    }

    #[test]
    fn an_unfinished_event_is_pending_not_emitted() {
        let mut p = Parser::default();
        assert!(p.feed(b"data: [DONE]\n").is_empty());
        assert!(p.pending());
        let mut p = Parser::default();
        assert!(p.feed(b"data: {\"cho").is_empty());
        assert!(p.pending());
        let mut p = Parser::default();
        assert!(p.feed(b"event: x\n\n").is_empty(), "no data, no event");
        assert!(!p.pending());
    }
}
