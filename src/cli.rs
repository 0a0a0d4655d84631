//! Command-line surface. Each command lives in its own module; this file is
//! the clap definition and the dispatch.

/// `println!` for command output. A failed write (stdout closed by `| head`,
/// a full disk) is returned as an error rather than a panic, and [`main`]
/// handles a closed pipe, once, by exiting quietly.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*).map_err($crate::cli::StdoutError)?
    }};
}

/// `print!` for command output; see [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout(), $($arg)*).map_err($crate::cli::StdoutError)?
    }};
}

/// A failed write of command output, told apart from every other I/O error:
/// only stdout's reader going away is a quiet exit.
#[derive(Debug, thiserror::Error)]
#[error("failed to write to stdout: {0}")]
pub(crate) struct StdoutError(#[source] pub std::io::Error);

mod agent_run;
mod approvals;
mod body;
mod broadcast;
mod case;
mod check;
mod costs;
mod daemon;
mod demo;
mod exit;
mod follow;
mod fsck;
mod history;
mod inbox;
mod init;
mod logging;
mod logs;
mod render;
mod selftest;
mod send;
mod spawn;
mod status;
mod stop;
mod table;
mod unblock;

use exit::Code;

use clap::{Parser, Subcommand};
use society_core::Layout;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "society", version, about = "A filesystem-native runtime for societies of agents", after_help = exit::HELP)]
pub struct Cli {
    /// Society root (the directory holding .society-agent/). Default: $SOCIETY_ROOT, else the nearest ancestor holding .society-agent/.
    #[arg(long, global = true, env = "SOCIETY_ROOT", value_name = "DIR")]
    root: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create .society-agent/ and a commented society.toml in DIR (default:
    /// --root if given, else the current directory); idempotent.
    Init { dir: Option<PathBuf> },
    /// Start the supervisor in the background.
    Up,
    /// Stop the supervisor and every agent gracefully.
    Down {
        /// How long to wait before giving up (30s, 2m; a bare number is seconds).
        #[arg(long, default_value = "30s", value_parser = duration)]
        timeout: std::time::Duration,
    },
    /// Run the supervisor in the foreground (for systemd and tests).
    Supervise {
        #[arg(long, hide = true)]
        detached: bool,
    },
    /// Create (or reuse) an agent folder and start it; prints the id.
    Spawn(spawn::Args),
    /// One row per agent (table, or --json).
    Status(status::Args),
    /// Append a message from the orchestrator to an agent's inbox; prints its id.
    Send(send::Args),
    /// Merged activity across agents, by time.
    Logs(logs::Args),
    /// Stop an agent gracefully and keep it stopped (its folder stays).
    Stop(stop::Args),
    /// Clear `failed` (or a stop) and start the agent again.
    Restart(stop::Args),
    /// Open, inspect, list and close cases.
    #[command(subcommand)]
    Case(case::Command),
    /// What agents and the supervisor addressed to you: replies, escalations, approval requests.
    Inbox(inbox::Args),
    /// Send one message to every agent (or every agent of a role).
    Broadcast(broadcast::Args),
    /// What the llm agents spent: tokens and USD, by agent, model or case.
    Costs(costs::Args),
    /// Pending approval requests (table, or --json).
    Approvals(approvals::ListArgs),
    /// Approve a pending request.
    Approve(approvals::ApproveArgs),
    /// Reject a pending request, with feedback for the requester.
    Reject(approvals::RejectArgs),
    /// Lift the sanction on an agent whose messages were refused too often.
    Unblock(unblock::Args),
    /// Validate society.toml and the agent folders without starting anything.
    Check,
    /// Check the society's files against the format (and repair what is safe).
    Fsck(fsck::Args),
    /// Prove the runtime's promises in scratch societies (for a nightly cron job).
    Selftest(selftest::Args),
    /// Run the offline demo: a four-stage pipeline that survives a SIGKILL.
    Demo(demo::Args),
    /// Run one agent process bound to a folder (started by the supervisor).
    #[command(hide = true)]
    AgentRun {
        #[arg(long)]
        folder: PathBuf,
    },
}

pub fn main() -> i32 {
    // An empty SOCIETY_ROOT means unset (`SOCIETY_ROOT= society status`),
    // not a missing value for --root. Still single-threaded here.
    if std::env::var_os("SOCIETY_ROOT").is_some_and(|v| v.is_empty()) {
        std::env::remove_var("SOCIETY_ROOT");
    }
    let (cli, root_from_env) = match parse() {
        Ok(c) => c,
        Err(e) if hidden_suggested(&e) => {
            // clap's "did you mean" may offer the hidden `agent-run`, which
            // is the supervisor's, never the user's.
            let what = e
                .get(clap::error::ContextKind::InvalidSubcommand)
                .map_or(String::new(), |v| format!(" '{v}'"));
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                format!("error: unrecognized subcommand{what}\n\n  `society --help` lists the commands\n").as_bytes(),
            );
            return Code::Usage.code();
        }
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Code::Usage
            } else {
                Code::Ok
            }
            .code();
        }
    };
    init_tracing(&cli);
    match run(cli, root_from_env) {
        Ok(code) => code.code(),
        // The reader has gone (`| head`): what it wanted it has; the rest
        // is nobody's. Exit quietly, as `head` expects of a producer.
        Err(err) if broken_pipe(&err) => Code::Ok.code(),
        Err(err) => {
            let code = exit::classify(&err).code();
            // stderr may be a full disk or a closed pipe: the exit code
            // still tells, and printing must not panic over it.
            let mut text = format!("error: {err}\n");
            for cause in err.chain().skip(1) {
                text.push_str(&format!("  caused by: {cause}\n"));
            }
            if let Some(hint) = exit::hint(&err) {
                text.push_str(&format!("  hint: {hint}\n"));
            }
            let _ = std::io::Write::write_all(&mut std::io::stderr(), text.as_bytes());
            code
        }
    }
}

/// Is this an unknown subcommand for which clap suggests a hidden one?
fn hidden_suggested(e: &clap::Error) -> bool {
    e.kind() == clap::error::ErrorKind::InvalidSubcommand
        && matches!(
            e.get(clap::error::ContextKind::SuggestedSubcommand),
            Some(clap::error::ContextValue::Strings(s)) if s.iter().any(|s| s == "agent-run")
        )
}

/// Did the error come from writing command output to a closed pipe? (Not
/// any broken pipe: a child's closed stdin is an error like another.)
fn broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<StdoutError>()
            .is_some_and(|e| e.0.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The command line, and whether the root came from `SOCIETY_ROOT` rather
/// than `--root` (errors name what gave it; `init` takes only the flag).
fn parse() -> Result<(Cli, bool), clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().try_get_matches()?;
    let from_env = matches.value_source("root") == Some(clap::parser::ValueSource::EnvVariable);
    Ok((Cli::from_arg_matches(&matches)?, from_env))
}

fn run(cli: Cli, root_from_env: bool) -> anyhow::Result<Code> {
    let root = cli.root.clone();
    let given_by = if root_from_env {
        "SOCIETY_ROOT"
    } else {
        "--root"
    };
    let layout = || -> anyhow::Result<Layout> {
        let cwd = std::env::current_dir()?;
        let layout = Layout::discover(root.as_deref().map(|r| (r, given_by)), &cwd)?;
        layout.check_format()?;
        Ok(layout)
    };
    match cli.command {
        // `init` with no DIR initialises --root if given, else the current
        // directory: never a society SOCIETY_ROOT happens to point at.
        Command::Init { dir } => init::run(dir.or(cli.root.filter(|_| !root_from_env))),
        Command::Up => daemon::up(&layout()?),
        Command::Down { timeout } => daemon::down(&layout()?, timeout),
        Command::Supervise { detached } => daemon::supervise(&layout()?, detached),
        Command::Spawn(args) => spawn::run(&layout()?, args),
        Command::Status(args) => status::run(&layout()?, args),
        Command::Send(args) => send::run(&layout()?, args),
        Command::Logs(args) => logs::run(&layout()?, args),
        Command::Stop(args) => stop::stop(&layout()?, args),
        Command::Restart(args) => stop::restart(&layout()?, args),
        Command::Case(cmd) => case::run(&layout()?, cmd),
        Command::Inbox(args) => inbox::run(&layout()?, args),
        Command::Broadcast(args) => broadcast::run(&layout()?, args),
        Command::Costs(args) => costs::run(&layout()?, args),
        Command::Approvals(args) => approvals::list(&layout()?, args),
        Command::Approve(args) => approvals::approve(&layout()?, args),
        Command::Reject(args) => approvals::reject(&layout()?, args),
        Command::Unblock(args) => unblock::run(&layout()?, args),
        Command::Demo(args) => demo::run(args),
        Command::Check => check::run(&layout()?),
        Command::Fsck(args) => fsck::run(&layout()?, args),
        Command::Selftest(args) => selftest::run(layout().ok().as_ref(), args),
        Command::AgentRun { folder } => agent_run::run(&folder),
    }
}

/// One duration syntax for every flag: humantime (`500ms`, `30s`, `2m`,
/// `1h 30m`), and a bare number is seconds (what `--timeout 30` always meant).
pub(crate) fn duration(text: &str) -> Result<std::time::Duration, String> {
    if let Ok(secs) = text.trim().parse::<u64>() {
        return Ok(std::time::Duration::from_secs(secs));
    }
    humantime::parse_duration(text.trim()).map_err(|e| format!("{e} (e.g. 500ms, 30s, 2m, 1h)"))
}

/// Log lines go to stderr: for `supervise` and the agents it starts, that is
/// the daemon log or journald (see `logging`). `supervise` logs its
/// lifecycle by default (info); other commands only warnings unless `-v`.
fn init_tracing(cli: &Cli) {
    let level = match (&cli.command, cli.verbose) {
        (Command::Supervise { .. }, 0) => "info",
        (_, 0) => "warn",
        (_, 1) => "info",
        _ => "debug",
    };
    logging::install(level);
}
