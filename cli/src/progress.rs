//! Where the progress of a followed execution goes: on a terminal, one live line redrawn in place (with a
//! spinner, so a long wait visibly is one); anywhere else (a pipe, a file, CI), plain lines, one per change.
//!
//! [`crate::watch::follow`] writes a line whenever the execution's progress changes; this writer turns the
//! lines that start with `[STATUS]` into the live line and prints every other line above it.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the spinner moves while nothing else changes.
const TICK: Duration = Duration::from_millis(120);

/// A [`Write`] for progress lines: live on a terminal, plain on stderr otherwise.
pub struct ProgressLine {
    bar: Option<ProgressBar>,
    plain: Box<dyn Write + Send>,
    pending: Vec<u8>,
}

impl ProgressLine {
    /// Live when both stdout and stderr are terminals: with stdout redirected the output is being kept,
    /// and a kept log reads better as plain lines.
    pub fn stderr() -> Self {
        let live = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
        Self::new(live)
    }

    /// Plain lines on stderr.
    pub fn plain() -> Self {
        Self::new(false)
    }

    /// Plain lines into `out`, one per line written.
    pub fn plain_to(out: Box<dyn Write + Send>) -> Self {
        Self {
            bar: None,
            plain: out,
            pending: Vec::new(),
        }
    }

    fn new(live: bool) -> Self {
        let bar = live.then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            // The template is a constant, so it parses; a failure would only lose the spinner.
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(TICK);
            bar
        });
        Self {
            bar,
            plain: Box::new(std::io::stderr()),
            pending: Vec::new(),
        }
    }

    fn line(&mut self, text: &str) {
        match &self.bar {
            Some(bar) if text.starts_with('[') => bar.set_message(text.to_owned()),
            Some(bar) => bar.println(text),
            None => {
                // A progress line lost to a closed stream must not end the wait it reports on.
                let _ = writeln!(self.plain, "{text}");
            }
        }
    }
}

impl Write for ProgressLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            self.line(String::from_utf8_lossy(&line[..end]).as_ref());
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ProgressLine {
    /// The last line stays on the terminal: it is the outcome.
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.line(String::from_utf8_lossy(&rest).as_ref());
        }
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer the test can read back after the progress line is dropped.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn plain_output_is_one_line_per_line_written_even_in_pieces() {
        let out = Shared::default();
        {
            let mut p = ProgressLine::plain_to(Box::new(out.clone()));
            write!(p, "started arn:1\n[RUNN").unwrap();
            p.write_all(b"ING] 00:00:01  state A\n").unwrap();
            write!(p, "[SUCCEEDED] 00:00:02  state B").unwrap();
        }
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "started arn:1\n[RUNNING] 00:00:01  state A\n[SUCCEEDED] 00:00:02  state B\n"
        );
    }
}
