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
            colour: allowed && std::io::stderr().is_terminal(),
            stdout_colour: allowed && std::io::stdout().is_terminal(),
        }
    }

    /// A console writing into memory, without colour; the second value reads it back.
    pub fn buffer() -> (Console, Captured) {
        let captured = Captured::default();
        let console = Console {
            sink: Arc::new(Mutex::new(Box::new(captured.clone()))),
            colour: false,
            stdout_colour: false,
        };
        (console, captured)
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
        let _ = writeln!(sink, "{}", paint(self.colour, colour, text));
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
