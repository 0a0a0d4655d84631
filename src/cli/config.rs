//! `society config reload`: apply a changed `society.toml` to the running
//! supervisor without a restart; `society config check` validates it (as
//! `society check` does, with the agent folders).

use super::exit::Code;
use super::output::{self, OutputArgs};
use society_core::Layout;
use society_runtime::client::config;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Validate society.toml, then apply it to the running supervisor: add
    /// agents (started as any agent is: at once if keep_alive, else on their
    /// first message), restart changed ones, stop removed ones (folders
    /// stay), use the new routing and defaults.
    #[command(after_help = examples!(
        "society config reload                 # after editing society.toml",
        "society config reload -o json | jq .reloaded.added"
    ))]
    Reload(ReloadArgs),
    /// Validate society.toml and the agent folders (same as `society check`).
    #[command(after_help = examples!("society config check"))]
    Check,
}

#[derive(Debug, clap::Args)]
pub struct ReloadArgs {
    /// How long to wait for the supervisor's answer (30s, 2m).
    #[arg(long, default_value = "30s", value_parser = super::duration)]
    timeout: std::time::Duration,
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(layout: &Layout, cmd: Command) -> anyhow::Result<Code> {
    match cmd {
        Command::Check => super::check::run(layout),
        Command::Reload(args) => reload(layout, args),
    }
}

fn reload(layout: &Layout, args: ReloadArgs) -> anyhow::Result<Code> {
    let done = config::reload(layout, args.timeout)?;
    let federation = society_runtime::federation::reload_note(layout);
    if args.output.is_json() {
        let doc = serde_json::json!({
            "supervisor_running": done.is_some(),
            "reloaded": done,
            "federation_note": federation,
        });
        output::report(&doc, args.output.format())?;
        return Ok(Code::Ok);
    }
    if let Some(note) = &federation {
        note!("note: {note}");
    }
    let Some(done) = done else {
        outln!(
            "{} is valid; no supervisor is running (`society up` starts one with it)",
            layout.society_toml().display()
        );
        return Ok(Code::Ok);
    };
    let ids = |v: &[society_core::AgentId]| {
        v.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if done.added.is_empty() && done.changed.is_empty() && done.removed.is_empty() {
        outln!(
            "reloaded {}: nothing changed ({} agent(s) as they were); routing and defaults applied",
            layout.society_toml().display(),
            done.unchanged
        );
        return Ok(Code::Ok);
    }
    outln!("reloaded {}", layout.society_toml().display());
    if !done.added.is_empty() {
        outln!("  added:     {}", ids(&done.added));
    }
    if !done.changed.is_empty() {
        outln!("  changed (restarted if running): {}", ids(&done.changed));
    }
    if !done.removed.is_empty() {
        outln!(
            "  removed (stopped; folders kept, `society rm` archives): {}",
            ids(&done.removed)
        );
    }
    outln!("  unchanged: {}", done.unchanged);
    Ok(Code::Ok)
}
