//! Progress on long work (`selftest`, the demo's setup), with indicatif: on
//! stderr, and drawn only when stderr is a terminal, so that stdout stays the
//! command's output and a log or a pipe never gets spinner frames.
//!
//! Whatever is printed on stdout while a bar is drawn goes through
//! [`ProgressBar::suspend`], which clears the bar first and redraws it after.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle};
use std::borrow::Cow;
use std::time::Duration;

/// How often a bar redraws by itself, so its spinner and clock move while a
/// step takes seconds.
const TICK: Duration = Duration::from_millis(120);

/// A bar of `len` steps; its message names the step under way.
pub fn bar(len: usize) -> ProgressBar {
    let style = ProgressStyle::with_template("{spinner} [{bar:24}] {pos}/{len} {msg} ({elapsed})")
        .expect("the template is valid")
        .progress_chars("=> ");
    start(ProgressBar::with_draw_target(Some(len as u64), target()).with_style(style))
}

/// A spinner whose message says what is being waited for.
pub fn spinner(message: impl Into<Cow<'static, str>>) -> ProgressBar {
    let style =
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("the template is valid");
    start(
        ProgressBar::with_draw_target(None, target())
            .with_style(style)
            .with_message(message),
    )
}

/// A line of command output on stdout, with `bar` out of its way.
pub fn outln(bar: &ProgressBar, line: &str) -> anyhow::Result<()> {
    bar.suspend(|| {
        outln!("{line}");
        Ok(())
    })
}

/// stderr if it is a terminal, else nothing at all.
fn target() -> ProgressDrawTarget {
    ProgressDrawTarget::stderr()
}

/// Ticks on its own, and clears itself when dropped on an error path, as
/// when finished.
fn start(bar: ProgressBar) -> ProgressBar {
    let bar = bar.with_finish(ProgressFinish::AndClear);
    if !bar.is_hidden() {
        bar.enable_steady_tick(TICK);
    }
    bar
}
