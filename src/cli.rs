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

/// `eprintln!` for notes beside the output (what was started, what was not
/// delivered, a summary): stderr may be closed or full, and a note is worth
/// neither a failure nor a panic, so a failed write is dropped.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// The "Examples:" section of a command's help, one command a line.
macro_rules! examples {
    ($($line:literal),+ $(,)?) => {
        concat!("Examples:", $("\n  ", $line),+)
    };
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
mod completions;
mod config;
mod costs;
mod daemon;
mod dashboard;
mod deadletter;
mod demo;
mod describe;
mod exit;
mod federation;
mod follow;
mod fsck;
mod help;
mod history;
mod inbox;
mod init;
mod llm;
mod logging;
mod logs;
mod man;
mod memory;
mod metrics;
mod output;
mod policy;
mod progress;
mod render;
mod retire;
mod review;
mod rm;
mod selftest;
mod send;
mod shared;
mod skills;
mod spawn;
mod status;
mod stop;
mod table;
mod timespec;
mod top;
mod tree;
mod unblock;
mod when;

use exit::Code;

use clap::{Parser, Subcommand};
use society_core::Layout;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "society",
    version,
    about = "A filesystem-native runtime for societies of agents",
    after_help = help::top_after_help()
)]
pub struct Cli {
    /// Society root (the directory holding .society-agent/). Default: $SOCIETY_ROOT, else the nearest ancestor holding .society-agent/.
    #[arg(long, global = true, env = "SOCIETY_ROOT", value_name = "DIR")]
    root: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Print times in UTC rather than local time (which honours TZ).
    #[arg(long, global = true)]
    utc: bool,
    #[command(subcommand)]
    command: Command,
}

// The order here is the order of `society help`'s groups (help::GROUPS
// decides the group); every visible command has an "Examples:" section.
#[derive(Debug, Subcommand)]
enum Command {
    /// Create .society-agent/ and a commented society.toml in DIR; idempotent.
    ///
    /// DIR defaults to --root if given, else the current directory, and is
    /// created if missing. Run it again, on a society or a half-made
    /// one, and it only adds what is missing: an existing society.toml and
    /// the agents' folders are never overwritten. SOCIETY_ROOT is not used
    /// here, so `init` never initialises a society by accident.
    #[command(after_help = examples!(
        "society init                 # here",
        "society init ~/team          # creates ~/team if needed",
        "society --root ~/team init   # the same"
    ))]
    Init {
        /// Directory to initialise (default: --root if given, else the current directory).
        dir: Option<PathBuf>,
    },
    /// Start the supervisor in the background.
    #[command(after_help = examples!("society up", "society up && society status"))]
    Up,
    /// Stop the supervisor and every agent gracefully.
    #[command(after_help = examples!("society down", "society down --timeout 2m"))]
    Down {
        /// How long to wait before giving up (30s, 2m; a bare number is seconds).
        #[arg(long, default_value = "30s", value_parser = duration)]
        timeout: std::time::Duration,
    },
    /// Run the supervisor in the foreground (for systemd and tests).
    #[command(after_help = examples!(
        "society supervise                      # logs on stderr; Ctrl-C stops everything",
        "society --root /srv/team -v supervise  # as a systemd unit's ExecStart"
    ))]
    Supervise {
        #[arg(long, hide = true)]
        detached: bool,
    },
    /// Create (or reuse) an agent folder and start it; prints the id.
    #[command(after_help = examples!(
        "society spawn helper --brain echo         # prints helper-1",
        "society spawn research --id researcher --keep-alive --wait",
        "society spawn writer --purpose \"review supplier contracts\" --tag legal --explain",
        "society spawn writer --purpose \"draft the launch post\" --fresh"
    ))]
    Spawn(spawn::Args),
    /// One row per agent (a table, or -o json|jsonl).
    #[command(after_help = examples!(
        "society status",
        "society status helper-1",
        "society status --watch",
        "society status --team lead-a",
        "society status --json | jq -r '.agents[] | select(.state == \"failed\") | .id'"
    ))]
    Status(status::Args),
    /// Append a message from the orchestrator to an agent's inbox; prints its id.
    #[command(after_help = examples!(
        "society send helper-1 \"hello\"",
        "society send role:research \"start with the moon\" --case c-01J...",
        "society send helper-1 --json '{\"topic\": \"tides\"}' --type task",
        "jq -n '{text: \"from stdin\"}' | society send helper-1 --body-file -"
    ))]
    Send(send::Args),
    /// Merged activity across agents, by time.
    #[command(after_help = examples!(
        "society logs -n 30",
        "society logs helper-1 -f",
        "society logs --since 10m --event agent_exited",
        "society logs --case c-01J... -o jsonl | jq -c '{ts, event, agent}'"
    ))]
    Logs(logs::Args),
    /// Stop an agent gracefully and keep it stopped (its folder stays).
    #[command(after_help = examples!("society stop helper-1", "society stop helper-1 --no-wait"))]
    Stop(stop::Args),
    /// Clear `failed` (or a stop) and start the agent again.
    #[command(after_help = examples!("society restart helper-1", "society restart helper-1 --timeout 1m"))]
    Restart(stop::Args),
    /// Open, inspect, list and close cases.
    #[command(subcommand, after_help = examples!(
        "society case new \"episode on tides\" --assign role:research --due 2h",
        "society case list --status open",
        "society case show c-01J...",
        "society case close c-01J... --reason done"
    ))]
    Case(case::Command),
    /// What agents and the supervisor addressed to you: replies, escalations, approval requests.
    #[command(after_help = examples!(
        "society inbox -n 20",
        "society inbox -f",
        "society inbox --since today",
        "society inbox -o jsonl | jq -c 'select(.type == \"approval_request\")'"
    ))]
    Inbox(inbox::Args),
    /// Send one message to every agent (or every agent of a role) that each acknowledges; `status ID`, `list`.
    ///
    /// Each recipient gets its own copy, with its own id: stdout has one
    /// `AGENT MESSAGE_ID` line per copy delivered; the broadcast's id, and a
    /// copy that could not be delivered (which fails the command), are said
    /// on stderr. Recipients acknowledge on handling their copy (`--ack
    /// explicit`: only when their brain replies with type `ack`); whoever has
    /// not by `--deadline` is escalated to you once. `society broadcast status
    /// ID` shows who has; `society broadcast list` every broadcast.
    #[command(after_help = examples!(
        "society broadcast \"wrap up by five\"",
        "society broadcast \"pause new work\" --role research --type pause",
        "society broadcast \"read shared/bible.md\" --ack explicit --deadline 30m",
        "society broadcast hello | cut -d' ' -f2   # the message ids",
        "society broadcast status 01J... -o json | jq -r '.missing[]'"
    ))]
    Broadcast(broadcast::Args),
    /// Shared context every agent reads (bible, style guide, schedules): put a new version, list, show, log.
    #[command(subcommand, after_help = examples!(
        "society shared put bible.md",
        "society shared list",
        "society shared show bible.md --version 1"
    ))]
    Shared(shared::Command),
    /// List dead letters; put them back into their agent's inbox once the cause is fixed.
    #[command(subcommand, after_help = examples!(
        "society deadletter list",
        "society deadletter retry 01J...",
        "society deadletter retry --all writer"
    ))]
    Deadletter(deadletter::Command),
    /// What an agent remembers, and what it would recall for a query (scores explained).
    #[command(after_help = examples!(
        "society memory writer query dragon fire",
        "society memory writer query \"the bible\" --k 10 -o json | jq '.hits[].text'",
        "society memory writer list"
    ))]
    Memory(memory::Args),
    /// This society's link to other societies over NATS JetStream: connected, messages waiting.
    #[command(subcommand, after_help = examples!(
        "society federation status",
        "society federation status --json | jq .pending"
    ))]
    Federation(federation::Command),
    /// The llm agents' circuit breakers: refused keys counted, open circuits, reset.
    #[command(subcommand, after_help = examples!(
        "society llm status",
        "society llm reset"
    ))]
    Llm(llm::Command),
    /// What the llm agents spent: tokens and USD, by agent, model or case.
    #[command(after_help = examples!(
        "society costs",
        "society costs --by model",
        "society costs --by case --json | jq ."
    ))]
    Costs(costs::Args),
    /// Pending approval requests (a table, or -o json|jsonl).
    #[command(after_help = examples!("society approvals", "society approvals --json | jq -r '.[].id'"))]
    Approvals(approvals::ListArgs),
    /// Approve a pending request.
    #[command(after_help = examples!("society approve 01J... --note \"go\""))]
    Approve(approvals::ApproveArgs),
    /// Reject a pending request, with feedback for the requester.
    #[command(after_help = examples!("society reject 01J... --feedback \"compress instead\""))]
    Reject(approvals::RejectArgs),
    /// Go ahead with another plan than the requester's.
    #[command(after_help = examples!("society override 01J... --plan \"wound the hero\" --feedback \"keep him\""))]
    Override(approvals::OverrideArgs),
    /// Go ahead with one of the alternatives a request lists.
    #[command(after_help = examples!("society choose 01J... --option 1", "society approvals --json | jq '.[0].alternatives'"))]
    Choose(approvals::ChooseArgs),
    /// Ask the requester for alternatives before deciding.
    #[command(after_help = examples!("society alternatives 01J... --feedback \"something cheaper\""))]
    Alternatives(approvals::AlternativesArgs),
    /// The governance policy: show it, per role, with its change log; change a value.
    #[command(subcommand, after_help = examples!(
        "society policy show",
        "society policy show --role director -o json",
        "society policy set autonomy.impact_max 0.7"
    ))]
    Policy(policy::Command),
    /// Autonomous decisions awaiting your review; approve or veto one after the fact.
    ///
    /// Without DECISION: the decisions agents took on their own (level
    /// autonomous, resolved by the agent) that nobody reviewed yet. With
    /// DECISION and --ok or --veto: sends the agent a `decision_review`
    /// message, which its runtime logs in decisions.jsonl and learns from
    /// (a veto makes it ask next time). Only autonomous, unreviewed
    /// decisions can be reviewed; the supervisor is not started.
    #[command(after_help = examples!(
        "society review",
        "society review --agent director -o json | jq -r '.[].id'",
        "society review 01J... --ok --quality 0.9",
        "society review 01J... --veto --feedback \"ask before changing the palette\""
    ))]
    Review(review::Args),
    /// Lift the sanction on an agent whose messages were refused too often.
    #[command(after_help = examples!("society unblock chatty-1"))]
    Unblock(unblock::Args),
    /// Governance and activity metrics folded from the logs; writes supervisor/metrics.json.
    ///
    /// Autonomy distribution, approval rates by level and decision type,
    /// the share of decisions that asked for approval per case (in order:
    /// the learning trajectory), debates, approval latency, revisions,
    /// messages by pair, tool calls, costs, completed cases per hour,
    /// pending approvals and unreviewed autonomous decisions. The JSON
    /// shape is in FORMAT.md.
    #[command(after_help = examples!(
        "society metrics",
        "society metrics --since today",
        "society metrics --json | jq '.approval_request_rate_by_case[] | [.case, .rate]'"
    ))]
    Metrics(metrics::Args),
    /// Everything about one agent, case or approval request.
    #[command(
        after_help = "Examples:\n  society describe worker-1\n  society describe c-01j...           # a case\n  society describe 01J...             # an approval request\n  society describe agent/c-1          # when a name is both an agent and a case\n  society describe worker-1 -o json | jq .recent_events"
    )]
    Describe(describe::Args),
    /// Remove an agent: its folder moves into .society-agent/archive/, and the supervisor forgets it.
    #[command(
        after_help = "Examples:\n  society rm worker-1                 # refused while it runs\n  society rm worker-1 --force         # stop it gracefully first\n  ls .society-agent/archive/          # agent-worker-1-<time>/ holds everything it had"
    )]
    Rm(rm::Args),
    /// Retire an agent: never reused again; its folder moves into .society-agent/archive/.
    #[command(after_help = examples!(
        "society retire writer-2 --reason \"project over\"",
        "society retire writer-2 --force        # stop it gracefully first"
    ))]
    Retire(retire::Args),
    /// List an agent's skills, or copy them to another agent.
    #[command(subcommand, after_help = examples!(
        "society skills list writer-1",
        "society skills copy writer-1 writer-3                  # all of skills/",
        "society skills copy writer-1 writer-3 style-guide.md"
    ))]
    Skills(skills::Command),
    /// Live CPU, memory, messages per second, queue and spend of every agent.
    #[command(
        after_help = "Examples:\n  society top                         # refreshes every second\n  society top --once                  # one sample (taken over one interval)\n  society top --once -o json | jq '.agents[] | {id, msgs_per_sec}'\n  society top -o jsonl --interval 5s  # one document a line, for a log"
    )]
    Top(top::Args),
    /// The organisation: leads and their teams, states, what waits at each.
    #[command(after_help = examples!(
        "society tree",
        "society tree -o json | jq '.members[].pending'"
    ))]
    Tree(tree::Args),
    /// A web page over the society: agents, cases, approvals, messages,
    /// costs — live, with the controls to steer.
    #[command(after_help = examples!(
        "society dashboard                            # http://127.0.0.1:7878/",
        "society dashboard --listen 127.0.0.1:0 --open",
        "society dashboard --listen 0.0.0.0:7878      # needs its token (printed once)"
    ))]
    Dashboard(dashboard::Args),
    /// Validate society.toml and the agent folders without starting anything.
    #[command(after_help = examples!("society check", "society check && society up"))]
    Check,
    /// Apply a changed society.toml to the running supervisor (`config reload`).
    #[command(subcommand, after_help = examples!(
        "society config reload",
        "society config check"
    ))]
    Config(config::Command),
    /// Check the society's files against the format (and repair what is safe).
    #[command(after_help = examples!(
        "society fsck",
        "society fsck --repair",
        "society fsck --json | jq '.findings[]'"
    ))]
    Fsck(fsck::Args),
    /// Prove the runtime's promises in scratch societies (for a nightly cron job).
    #[command(after_help = examples!(
        "society selftest --quick",
        "society selftest --list",
        "society selftest --only sigkill --json --report /tmp/selftest.json"
    ))]
    Selftest(selftest::Args),
    /// Run the offline demo: a four-stage pipeline that survives a SIGKILL.
    #[command(after_help = examples!(
        "society demo",
        "society demo --ask",
        "society demo --dir /tmp/demo --keep-running"
    ))]
    Demo(demo::Args),
    /// Print the completion script for a shell.
    #[command(after_help = examples!(
        "society completions bash > ~/.local/share/bash-completion/completions/society",
        "society completions zsh > ~/.zfunc/_society    # with fpath+=~/.zfunc in ~/.zshrc",
        "society completions fish > ~/.config/fish/completions/society.fish"
    ))]
    Completions(completions::Args),
    /// Print the manual page (roff), or write one page per command.
    #[command(after_help = examples!(
        "society man | man -l -",
        "society man --dir ~/.local/share/man/man1 && man society-status"
    ))]
    Man(man::Args),
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
    // Society's files hold messages, conversations and costs: the owner's
    // alone, whatever umask it was started with (0600 files, 0700
    // directories; `fsck` reports and repairs looser ones). Agents' programs
    // inherit it.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    // Not readable through /proc by the programs agents run (same user):
    // this process's environment holds the API keys. `exec` of a program
    // makes it dumpable again.
    let _ = nix::sys::prctl::set_dumpable(false);
    // The supervisor starts every agent as exactly `agent-run --folder DIR`.
    // Building the whole CLI to parse that would leave each of a thousand
    // idle agents about 1 MiB of heap it never uses again (clap's command
    // tree): the agent process skips it.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // An agent's program starts as `sandbox-exec -- PROGRAM ARGS…`: the
    // process confines itself and becomes the program.
    if args
        .get(1)
        .is_some_and(|c| c == society_brains::sandbox::LAUNCHER_COMMAND)
    {
        return society_brains::sandbox::launcher_main(&args[2..]);
    }
    if let [_, cmd, flag, folder] = args.as_slice() {
        if cmd == "agent-run" && flag == "--folder" {
            logging::install("warn");
            return finish(agent_run::run(std::path::Path::new(folder)));
        }
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
    when::set_utc(cli.utc);
    finish(run(cli, root_from_env))
}

/// A command's result as the process's exit code, its error said on stderr.
fn finish(result: anyhow::Result<Code>) -> i32 {
    match result {
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
    use clap::FromArgMatches;
    let matches = help::command().try_get_matches()?;
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
        Command::Deadletter(cmd) => deadletter::run(&layout()?, cmd),
        Command::Llm(cmd) => llm::run(&layout()?, cmd),
        Command::Federation(cmd) => federation::run(&layout()?, cmd),
        Command::Memory(args) => memory::run(&layout()?, args),
        Command::Costs(args) => costs::run(&layout()?, args),
        Command::Approvals(args) => approvals::list(&layout()?, args),
        Command::Approve(args) => approvals::approve(&layout()?, args),
        Command::Reject(args) => approvals::reject(&layout()?, args),
        Command::Override(args) => approvals::override_plan(&layout()?, args),
        Command::Choose(args) => approvals::choose(&layout()?, args),
        Command::Alternatives(args) => approvals::alternatives(&layout()?, args),
        Command::Policy(cmd) => policy::run(&layout()?, cmd),
        Command::Shared(cmd) => shared::run(&layout()?, cmd),
        Command::Review(args) => review::run(&layout()?, args),
        Command::Metrics(args) => metrics::run(&layout()?, args),
        Command::Unblock(args) => unblock::run(&layout()?, args),
        Command::Describe(args) => describe::run(&layout()?, args),
        Command::Rm(args) => rm::run(&layout()?, args),
        Command::Retire(args) => retire::run(&layout()?, args),
        Command::Skills(cmd) => skills::run(&layout()?, cmd),
        Command::Top(args) => top::run(&layout()?, args),
        Command::Tree(args) => tree::run(&layout()?, args),
        Command::Dashboard(args) => dashboard::run(&layout()?, args),
        Command::Demo(args) => demo::run(args),
        Command::Check => check::run(&layout()?),
        Command::Config(cmd) => config::run(&layout()?, cmd),
        Command::Fsck(args) => fsck::run(&layout()?, args),
        Command::Selftest(args) => selftest::run(layout().ok().as_ref(), args),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => man::run(args),
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
