//! Log lines on stderr, for whoever reads them: a terminal (colours), a file
//! (`supervisor/daemon.log`: plain, with timestamps) or journald (`society
//! supervise` under systemd: no timestamp, since journald stamps every line
//! itself, and a `<N>` syslog priority prefix, so `journalctl -p warning`
//! filters by level).
//!
//! Every event is one line; the supervisor's are written with `key=value`
//! fields (`agent=… pid=… gen=…`), so `grep agent=helper-1` finds an agent's.

use std::io::IsTerminal;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// The crates whose events `-v` and `-vv` show; the libraries under them
/// (the file watcher, HTTP) stay at `warn` unless `RUST_LOG` asks.
const OURS: [&str; 4] = [
    "society",
    "society_core",
    "society_runtime",
    "society_brains",
];

/// Installs the subscriber: our crates at `level`, unless `RUST_LOG` is set.
pub fn install(level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        let ours: Vec<String> = OURS.iter().map(|c| format!("{c}={level}")).collect();
        EnvFilter::new(format!("warn,{}", ours.join(",")))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LossyStderr)
        .log_internal_errors(false)
        .with_target(false);
    let _ = if stderr_is_journal() {
        let format = tracing_subscriber::fmt::format()
            .without_time()
            .with_target(false)
            .with_ansi(false);
        builder
            .with_ansi(false)
            .event_format(Priority(format))
            .try_init()
    } else {
        builder.with_ansi(colours()).try_init()
    };
}

/// Colours only for a person at a terminal, and never with `NO_COLOR`.
fn colours() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Is stderr connected to journald? systemd sets `JOURNAL_STREAM` to the
/// `device:inode` of the stream it gave the service; a child whose stderr
/// was redirected (the supervisor `society up` starts, whose stderr is
/// `daemon.log`; the agents) inherits the variable but not the stream, so
/// the variable alone is not enough (sd_journal_stream_fd(3)).
fn stderr_is_journal() -> bool {
    let Some(var) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = var.to_str().and_then(|v| v.split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .and_then(|fd| std::fs::File::from(fd).metadata())
        .is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// The default line, after a syslog priority prefix (`<3>` error … `<7>`
/// debug) that journald turns into the entry's `PRIORITY`.
struct Priority<F>(F);

impl<S, N, F> FormatEvent<S, N> for Priority<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let priority = match *event.metadata().level() {
            Level::ERROR => 3,
            Level::WARN => 4,
            Level::INFO => 6,
            _ => 7,
        };
        write!(writer, "<{priority}>")?;
        self.0.format_event(ctx, writer, event)
    }
}

/// stderr for log lines, where a failed write is dropped: the daemon log is
/// on the society's own disk, and a full disk (or `2>/dev/full`, or a closed
/// pipe) must cost log lines, never the process. (The default writer's
/// failure is reported with `eprintln!`, which panics when stderr fails.)
struct LossyStderr;

impl std::io::Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}
