//! Where the run talks to the person (or CI log) watching it, besides the per-case lines:
//! stderr notes — every wait longer than a second with why and how long, warnings such as
//! `--insecure`, and errors — and whether stdout and stderr get colour. Colour only on a
//! terminal, never when `NO_COLOR` is set (https://no-color.org).

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The stderr side of a run. Cheap to clone; every clone writes to the same sink.
#[derive(Clone)]
pub struct Console {
    sink: Arc<Mutex<Box<dyn Write + Send>>>,
    /// The run's credentials, written as `[redacted]` wherever a line would quote them
    /// ([`Console::hiding`]).
    secrets: Arc<Vec<String>>,
    /// Colour on the notes (stderr is a terminal).
    colour: bool,
    /// Colour on the per-case lines (stdout is a terminal).
    stdout_colour: bool,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("colour", &self.colour)
            .field("stdout_colour", &self.stdout_colour)
            .finish_non_exhaustive()
    }
}

impl Default for Console {
    fn default() -> Console {
        Console::stderr()
    }
}

/// A sink that keeps what was written, for tests: [`Console::buffer`].
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Everything written so far.
    pub fn text(&self) -> String {
        let bytes = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `NO_COLOR` set to anything non-empty turns colour off.
fn colour_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

impl Console {
    /// The process's stderr; colour where stderr (notes) and stdout (case lines) are
    /// terminals and `NO_COLOR` is not set.
    pub fn stderr() -> Console {
        let allowed = colour_allowed();
        Console {
            sink: Arc::new(Mutex::new(Box::new(std::io::stderr()))),
            secrets: Arc::default(),
            colour: allowed && std::io::stderr().is_terminal(),
            stdout_colour: allowed && std::io::stdout().is_terminal(),
        }
    }

    /// A console writing into memory, without colour; the second value reads it back.
    pub fn buffer() -> (Console, Captured) {
        let captured = Captured::default();
        let console = Console {
            sink: Arc::new(Mutex::new(Box::new(captured.clone()))),
            secrets: Arc::default(),
            colour: false,
            stdout_colour: false,
        };
        (console, captured)
    }

    /// This console, writing each of `secrets` (the run's key and token) that a line
    /// would quote as `[redacted]`: a target that echoes a credential in its answer (a 401
    /// naming the key it refused) must not put it in a CI log. Secrets shorter than 8
    /// characters are not looked for (they would redact ordinary words).
    pub fn hiding(mut self, secrets: impl IntoIterator<Item = String>) -> Console {
        self.secrets = Arc::new(
            secrets
                .into_iter()
                .filter(|secret| secret.len() >= 8)
                .collect(),
        );
        self
    }

    /// `text` with every secret [`Console::hiding`] named written as `[redacted]`: as
    /// given, in any case (`M2M_TEST_…`), or with characters JSON-escaped (`m2m\u005ftest_…`)
    /// or percent-encoded (`m2m%5Ftest%5F…`).
    pub fn scrub<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        if self.secrets.is_empty() {
            return std::borrow::Cow::Borrowed(text);
        }
        let bytes = text.as_bytes();
        let mut out = String::new();
        let (mut copied, mut at) = (0, 0);
        while at < bytes.len() {
            // A spelling starts with an ASCII byte (the secret's first, or `\`): at a
            // character's edge, as it ends at one.
            match self
                .secrets
                .iter()
                .find_map(|secret| spelled_at(bytes, at, secret.as_bytes()))
            {
                Some(end) => {
                    out.push_str(&text[copied..at]);
                    out.push_str(linkbox_contracts::sandbox::REDACTED);
                    (copied, at) = (end, end);
                }
                None => at += 1,
            }
        }
        if copied == 0 {
            return std::borrow::Cow::Borrowed(text);
        }
        out.push_str(&text[copied..]);
        std::borrow::Cow::Owned(out)
    }

    /// Whether the per-case lines on stdout may be coloured.
    pub fn stdout_colour(&self) -> bool {
        self.stdout_colour
    }

    fn line(&self, colour: Colour, text: &str) {
        let mut sink = self
            .sink
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let _ = writeln!(sink, "{}", paint(self.colour, colour, &self.scrub(text)));
        let _ = sink.flush();
    }

    /// A plain note.
    pub fn note(&self, text: &str) {
        self.line(Colour::Dim, text);
    }

    /// `waiting N s <why>`, when the wait is longer than a second; shorter waits are silent.
    pub fn waiting(&self, wait: Duration, why: &str) {
        if wait > Duration::from_secs(1) {
            self.line(
                Colour::Yellow,
                &format!("waiting {} s {why}", wait.as_secs_f64().ceil() as u64),
            );
        }
    }

    /// `warning: ...`.
    pub fn warning(&self, text: &str) {
        self.line(Colour::Yellow, &format!("warning: {text}"));
    }

    /// `contract: ...`, the one-line error before a non-zero exit.
    pub fn error(&self, text: &str) {
        self.line(Colour::Red, &format!("contract: {text}"));
    }
}

/// Where `secret` ends if it is spelled at `at` in `text`: each of its bytes as itself in
/// any ASCII case, as a JSON `\uXXXX` escape of it, or after a JSON `\`.
fn spelled_at(text: &[u8], at: usize, secret: &[u8]) -> Option<usize> {
    let mut position = at;
    for expected in secret {
        let byte = *text.get(position)?;
        // A `\u` escape is read first: for a `u` expected, `\u0075` is one, not an escaped
        // `u` followed by `0075`.
        let unicode = (byte == b'\\' && text.get(position + 1) == Some(&b'u'))
            .then(|| {
                let hex = std::str::from_utf8(text.get(position + 2..position + 6)?).ok()?;
                u8::try_from(u32::from_str_radix(hex, 16).ok()?).ok()
            })
            .flatten();
        if byte.eq_ignore_ascii_case(expected) {
            position += 1;
        } else if let Some(code) = unicode {
            if !code.eq_ignore_ascii_case(expected) {
                return None;
            }
            position += 6;
        } else if byte == b'\\' && text.get(position + 1) == Some(expected) {
            position += 2;
        } else if byte == b'%' {
            // Percent-encoded, as a target quoting a path or a query may write it
            // (`m2m%5Ftest%5F…`).
            let hex = std::str::from_utf8(text.get(position + 1..position + 3)?).ok()?;
            let code = u8::from_str_radix(hex, 16).ok()?;
            if !code.eq_ignore_ascii_case(expected) {
                return None;
            }
            position += 3;
        } else {
            return None;
        }
    }
    Some(position)
}

/// A writer that passes `inner` whole lines with the console's secrets scrubbed
/// ([`Console::scrub`]): a line is held until its end (or a flush), so a secret written in
/// pieces is still found.
pub struct Scrubbed<'a> {
    inner: &'a mut (dyn Write + Send),
    console: Console,
    pending: Vec<u8>,
}

impl<'a> Scrubbed<'a> {
    pub fn new(inner: &'a mut (dyn Write + Send), console: Console) -> Scrubbed<'a> {
        Scrubbed {
            inner,
            console,
            pending: Vec::new(),
        }
    }

    fn pass(&mut self, upto: usize) -> std::io::Result<()> {
        let line: Vec<u8> = self.pending.drain(..upto).collect();
        let text = String::from_utf8_lossy(&line);
        self.inner.write_all(self.console.scrub(&text).as_bytes())
    }
}

impl Write for Scrubbed<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if let Some(end) = self.pending.iter().rposition(|byte| *byte == b'\n') {
            self.pass(end + 1)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.pass(self.pending.len())?;
        self.inner.flush()
    }
}

impl Drop for Scrubbed<'_> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// The few colours the suite uses.
#[derive(Debug, Clone, Copy)]
pub enum Colour {
    Green,
    Red,
    Yellow,
    Dim,
}

/// `text` in `colour` when `enabled` (ANSI SGR), else unchanged.
pub fn paint(enabled: bool, colour: Colour, text: &str) -> String {
    if !enabled {
        return text.to_owned();
    }
    let code = match colour {
        Colour::Green => "32",
        Colour::Red => "31",
        Colour::Yellow => "33",
        Colour::Dim => "2",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A secret is redacted as given, in any case, JSON-escaped and percent-encoded; other
    /// text is kept.
    #[test]
    fn a_secret_is_scrubbed_however_an_answer_spells_it() {
        let key = "m2m_test_Q7w9Z2k4R8t1Y6u3I5o0P2a4S6d8F1g3";
        let (console, _) = Console::buffer();
        let console = console.hiding([key.to_owned(), "short".to_owned()]);
        for text in [
            format!("Invalid API key {key}."),
            format!("Invalid API key {}.", key.to_ascii_uppercase()),
            r#"Invalid API key m2m\u005ftest\u005f\u00517w9Z2k4R8t1Y6u3I5o0P2a4S6d8F1g3."#
                .to_owned(),
            "Invalid API key m2m%5Ftest%5fQ7w9Z2k4R8t1Y6u3I5o0P2a4S6d8F1g3.".to_owned(),
            // A `u` of the key escaped, and every character escaped.
            r#"Invalid API key m2m_test_Q7w9Z2k4R8t1Y6\u00753I5o0P2a4S6d8F1g3."#.to_owned(),
            format!(
                "Invalid API key {}.",
                key.chars()
                    .map(|c| format!("\\u{:04x}", c as u32))
                    .collect::<String>()
            ),
        ] {
            assert_eq!(
                console.scrub(&text),
                "Invalid API key [redacted].",
                "{text}"
            );
        }
        let token = r#"tok"q"Secret1"#;
        let console = console.hiding([token.to_owned()]);
        assert_eq!(
            console.scrub(r#"{"echo":"tok\"q\"Secret1"}"#),
            r#"{"echo":"[redacted]"}"#
        );
        assert_eq!(console.scrub("short and plain"), "short and plain");
    }

    #[test]
    fn waits_of_a_second_or_less_are_silent_and_longer_ones_say_why() {
        let (console, captured) = Console::buffer();
        console.waiting(Duration::from_millis(900), "for nothing");
        console.waiting(Duration::from_millis(41_200), "for the M2M rate limit");
        assert_eq!(captured.text(), "waiting 42 s for the M2M rate limit\n");
    }

    #[test]
    fn paint_adds_escapes_only_when_enabled() {
        assert_eq!(paint(false, Colour::Red, "FAIL"), "FAIL");
        assert_eq!(paint(true, Colour::Red, "FAIL"), "\x1b[31mFAIL\x1b[0m");
    }
}
