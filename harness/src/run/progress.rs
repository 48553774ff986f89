//! Progress while the workload runs: on a terminal, a bar with the elapsed and remaining
//! time, the op counts and the fault active now, updated four times a second; otherwise a log
//! line every five seconds.

use super::faults::sleep_until;
use super::RunLog;
use crate::recorder::Recorder;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Shows progress until `stop` is set.
pub fn show(
    recorder: &Recorder,
    start: Instant,
    limit: Duration,
    stop: &AtomicBool,
    active: &Mutex<Option<String>>,
    log: &RunLog,
) {
    use std::io::IsTerminal;
    let status = || {
        let c = recorder.counts();
        let fault = active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_else(|| "none".into());
        format!(
            "{} ok, {} fail, {} info; fault now: {fault}",
            c.ok, c.fail, c.info
        )
    };
    if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(limit.as_secs().max(1));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len}s, {eta} left  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        crate::logging::set_bar(Some(bar.clone()));
        let mut next = Instant::now();
        while sleep_until(next, stop) {
            bar.set_position(start.elapsed().as_secs().min(limit.as_secs()));
            bar.set_message(status());
            next += Duration::from_millis(250);
        }
        crate::logging::set_bar(None);
        bar.finish_and_clear();
        return;
    }
    let every = Duration::from_secs(5);
    let mut next = start + every;
    while sleep_until(next, stop) {
        log.say(&format!(
            "{:>3.0}s of {}s: {}",
            start.elapsed().as_secs_f64(),
            limit.as_secs(),
            status()
        ));
        next += every;
    }
}
