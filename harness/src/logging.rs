//! Logs through tracing: to stderr, to the run's faultline.log once a run has a directory,
//! and around the progress bar when one is shown. `--log-level` (or `FAULTLINE_LOG`, with
//! tracing's filter syntax) chooses what is shown.

use indicatif::ProgressBar;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use tracing_subscriber::fmt::MakeWriter;

static FILE: Mutex<Option<File>> = Mutex::new(None);
static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Starts logging at `level` (`error`, `warn`, `info`, `debug`, `trace`, or a filter).
pub fn init(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FAULTLINE_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Tee)
        .with_target(false)
        .with_ansi(false)
        .with_timer(Elapsed(std::time::Instant::now()))
        .try_init();
}

/// From now on, log lines also go to `path` (a run's faultline.log).
pub fn to_file(path: &Path) -> std::io::Result<()> {
    let f = File::create(path)?;
    *FILE.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
    Ok(())
}

/// Stops writing to the run's file.
pub fn close_file() {
    *FILE.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

/// Log lines are printed above this progress bar (or plainly, with `None`).
pub fn set_bar(bar: Option<ProgressBar>) {
    *BAR.lock().unwrap_or_else(|e| e.into_inner()) = bar;
}

/// Seconds since faultline started, to a tenth.
struct Elapsed(std::time::Instant);

impl tracing_subscriber::fmt::time::FormatTime for Elapsed {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        write!(w, "{:7.1}s", self.0.elapsed().as_secs_f64())
    }
}

/// Writes each formatted event to stderr and the file.
struct Tee;

/// One event's text, written out when dropped.
struct Line(Vec<u8>);

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let bar = BAR.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let out = || {
            let _ = std::io::stderr().write_all(&self.0);
        };
        match bar {
            Some(b) => b.suspend(out),
            None => out(),
        }
        if let Some(f) = FILE.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            let _ = f.write_all(&self.0);
        }
    }
}

impl<'a> MakeWriter<'a> for Tee {
    type Writer = Line;
    fn make_writer(&'a self) -> Line {
        Line(Vec::with_capacity(128))
    }
}
