//! An incremental `text/event-stream` parser.

/// One dispatched server-sent event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, `"message"` when absent.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// The longest line the parser accepts (a poke is ~100 bytes).
const MAX_LINE: usize = 1 << 20;

/// An incremental parser for `text/event-stream` (the WHATWG rules): lines end with `\n`,
/// `\r\n` or `\r`, possibly split across chunks; a blank line dispatches the event; `:`
/// starts a comment; `event:` and `data:` fields (one optional space after the colon), other
/// fields ignored; an event without data is not dispatched.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    event: String,
    data: String,
    has_data: bool,
    skip_lf: bool,
    started: bool,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next chunk of the body; complete events are appended to `out`.
    ///
    /// # Errors
    /// A line longer than 1 MiB (the parser then stops making sense of the stream).
    pub fn feed(
        &mut self,
        chunk: &[u8],
        out: &mut Vec<SseEvent>,
    ) -> std::result::Result<(), String> {
        for &byte in chunk {
            if self.skip_lf {
                self.skip_lf = false;
                if byte == b'\n' {
                    continue;
                }
            }
            match byte {
                b'\n' => self.end_line(out),
                b'\r' => {
                    self.end_line(out);
                    self.skip_lf = true;
                }
                _ => {
                    if self.line.len() >= MAX_LINE {
                        return Err(format!("a line is longer than {MAX_LINE} bytes"));
                    }
                    self.line.push(byte);
                }
            }
        }
        Ok(())
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        let raw = std::mem::take(&mut self.line);
        let mut line: &[u8] = &raw;
        if !self.started {
            self.started = true;
            line = line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(line);
        }
        if line.is_empty() {
            let event = std::mem::take(&mut self.event);
            if self.has_data {
                self.has_data = false;
                let mut data = std::mem::take(&mut self.data);
                data.pop(); // the last '\n'
                out.push(SseEvent {
                    event: if event.is_empty() {
                        "message".into()
                    } else {
                        event
                    },
                    data,
                });
            }
            return;
        }
        if line[0] == b':' {
            return; // comment (e.g. `: ready`)
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match field {
            b"event" => self.event = String::from_utf8_lossy(value).into_owned(),
            b"data" => {
                self.data.push_str(&String::from_utf8_lossy(value));
                self.data.push('\n');
                self.has_data = true;
            }
            _ => {} // id, retry and unknown fields: not used by EventoDB
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_chunks(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, &mut out).unwrap();
        }
        out
    }

    fn poke_event(data: &str) -> SseEvent {
        SseEvent {
            event: "poke".into(),
            data: data.into(),
        }
    }

    const POKE: &str = r#"{"stream":"account-1","position":0,"globalPosition":1}"#;

    #[test]
    fn parses_the_servers_framing() {
        let body = format!(": ready\n\nevent: poke\ndata: {POKE}\n\n");
        assert_eq!(parse_chunks(&[body.as_bytes()]), vec![poke_event(POKE)]);
    }

    #[test]
    fn events_split_at_every_byte_and_crlf_or_cr_endings() {
        for ending in ["\n", "\r\n", "\r"] {
            let body = format!("event: poke{ending}data: {POKE}{ending}{ending}");
            let bytes = body.as_bytes();
            let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
            assert_eq!(parse_chunks(&chunks), vec![poke_event(POKE)], "{ending:?}");
            let (a, b) = bytes.split_at(bytes.len() - 1);
            assert_eq!(parse_chunks(&[a, b]), vec![poke_event(POKE)], "{ending:?}");
        }
    }

    #[test]
    fn data_lines_join_comments_and_unknown_fields_are_ignored() {
        let body =
            b"\xEF\xBB\xBF: hi\nid: 7\nretry: 10\nevent:poke\ndata:a\ndata: b\ndata\nfoo: bar\n\n";
        assert_eq!(parse_chunks(&[body]), vec![poke_event("a\nb\n")]);
    }

    #[test]
    fn no_data_no_event_and_type_resets() {
        let body = b"event: poke\n\ndata: x\n\n";
        assert_eq!(
            parse_chunks(&[body]),
            vec![SseEvent {
                event: "message".into(),
                data: "x".into()
            }]
        );
        // An incomplete event at the end is not dispatched.
        assert!(parse_chunks(&[b"event: poke\ndata: x\n"]).is_empty());
    }

    #[test]
    fn overlong_lines_are_an_error() {
        let mut parser = SseParser::new();
        let big = vec![b'a'; MAX_LINE + 1];
        assert!(parser.feed(&big, &mut Vec::new()).is_err());
    }
}
