//! A progress line on standard error, drawn only when standard error is a terminal
//! (`std::io::IsTerminal`): redirected to a file or a pipe, nothing is drawn, so no
//! carriage return or escape code ever lands in a log. Shared by the `export` and
//! `reverse_etl` examples (`#[path = "common/progress.rs"] mod progress;`).
//!
//! Other lines for standard error go through [`ProgressLine::eprintln`], or through
//! [`ProgressLine::log_writer`] for `tracing`, which first clear the progress line so
//! that it never runs into them.

#![allow(dead_code)] // each example uses part of it

use std::io::{self, IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the line is redrawn at most.
const REDRAW: Duration = Duration::from_millis(200);

/// The progress line of one process.
#[derive(Debug)]
pub(crate) struct ProgressLine {
    enabled: bool,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Whether a line is on screen (to clear before anything else is written).
    drawn: bool,
    last_draw: Option<Instant>,
}

impl ProgressLine {
    /// A progress line, drawn only if standard error is a terminal.
    pub(crate) fn new() -> Arc<ProgressLine> {
        ProgressLine::with_terminal(io::stderr().is_terminal())
    }

    /// A progress line drawn (`terminal`) or not.
    pub(crate) fn with_terminal(terminal: bool) -> Arc<ProgressLine> {
        Arc::new(ProgressLine { enabled: terminal, state: Mutex::new(State::default()) })
    }

    /// Whether anything is drawn at all.
    pub(crate) fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Replaces the line with `text` (made only when it is drawn), at most every 200 ms.
    pub(crate) fn draw(&self, text: impl FnOnce() -> String) {
        if !self.enabled {
            return;
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.last_draw.is_some_and(|at| at.elapsed() < REDRAW) {
            return;
        }
        let mut stderr = io::stderr().lock();
        // Carriage return, erase the line, the text; no newline.
        let _ = write!(stderr, "\r\x1b[2K{}", text());
        let _ = stderr.flush();
        state.drawn = true;
        state.last_draw = Some(Instant::now());
    }

    /// Erases the line, if one is drawn.
    pub(crate) fn clear(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        clear(&mut state, &mut io::stderr().lock());
    }

    /// Writes a line to standard error, below no progress line.
    pub(crate) fn eprintln(&self, text: impl std::fmt::Display) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut stderr = io::stderr().lock();
        clear(&mut state, &mut stderr);
        let _ = writeln!(stderr, "{text}");
    }

    /// A `tracing_subscriber` writer to standard error that clears the line before
    /// each log line.
    pub(crate) fn log_writer(self: &Arc<Self>) -> LogWriter {
        LogWriter(self.clone())
    }
}

fn clear(state: &mut State, stderr: &mut impl Write) {
    if state.drawn {
        let _ = write!(stderr, "\r\x1b[2K");
        let _ = stderr.flush();
        state.drawn = false;
        // Redrawn at the next chance, not 200 ms later.
        state.last_draw = None;
    }
}

/// See [`ProgressLine::log_writer`].
#[derive(Debug, Clone)]
pub(crate) struct LogWriter(Arc<ProgressLine>);

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogLine<'a>;

    fn make_writer(&'a self) -> LogLine<'a> {
        LogLine(&self.0)
    }
}

/// Writes log output to standard error once the progress line is cleared.
#[derive(Debug)]
pub(crate) struct LogLine<'a>(&'a ProgressLine);

impl Write for LogLine<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut state = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut stderr = io::stderr().lock();
        clear(&mut state, &mut stderr);
        stderr.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}
