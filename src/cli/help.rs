//! The help that teaches: `society --help` lists the commands by what they
//! are for, and completions and man pages see only what a user may type.
//!
//! clap 4 lists subcommands in one flat list and has no per-subcommand
//! headings, so the top-level help is rendered from a template whose command
//! list is computed here, at run time, from the subcommands' own `about`: a
//! new command shows up with the help it was given, and the unit test below
//! fails until it is put in a group.

use super::Cli;
use clap::{Command, CommandFactory};
use std::fmt::Write as _;

/// The groups of `society --help`, in order. Every visible command is in
/// exactly one, and every name is a command (the tests check both).
pub const GROUPS: &[(&str, &[&str])] = &[
    (
        "Lifecycle",
        &[
            "init",
            "up",
            "down",
            "supervise",
            "spawn",
            "stop",
            "restart",
            "rm",
            "retire",
            "skills",
            "config",
        ],
    ),
    (
        "Messages",
        &["send", "broadcast", "shared", "inbox", "logs", "deadletter"],
    ),
    (
        "Cases and approvals",
        &[
            "case",
            "approvals",
            "approve",
            "reject",
            "override",
            "choose",
            "alternatives",
            "unblock",
        ],
    ),
    (
        "Inspection",
        &[
            "status",
            "tree",
            "describe",
            "top",
            "dashboard",
            "costs",
            "llm",
            "memory",
            "federation",
        ],
    ),
    ("Governance", &["policy", "review", "metrics"]),
    (
        "Maintenance",
        &[
            "check",
            "fsck",
            "selftest",
            "demo",
            "completions",
            "man",
            "help",
        ],
    ),
];

/// The command line as parsed: `Cli`'s, with the grouped command list.
pub fn command() -> Command {
    let cmd = Cli::command();
    let commands = grouped(&cmd);
    let styles = cmd.get_styles();
    let header = styles.get_header();
    let options = format!("{}Options:{}", header.render(), header.render_reset());
    cmd.help_template(format!(
        "{{before-help}}{{about-with-newline}}\n{{usage-heading}} {{usage}}\n\n{commands}{options}\n{{options}}{{after-help}}"
    ))
}

/// The top-level help's closing section: a first session, and the exit codes.
pub fn top_after_help() -> String {
    format!(
        "{}\n\n{}",
        examples!(
            "society init && society up",
            "society spawn helper --brain echo",
            "society send helper-1 \"hello\"",
            "society logs -f"
        ),
        super::exit::HELP
    )
}

/// `Heading:` and `  name  about` lines for every visible subcommand, by
/// group; clap's `help` subcommand included (it exists once built).
fn grouped(cmd: &Command) -> String {
    let mut built = cmd.clone();
    built.build();
    let styles = built.get_styles();
    let (header, literal) = (styles.get_header(), styles.get_literal());
    let visible: Vec<&Command> = built
        .get_subcommands()
        .filter(|c| !c.is_hide_set())
        .collect();
    let width = visible
        .iter()
        .map(|c| c.get_name().len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (group, names) in GROUPS {
        let members: Vec<&&Command> = names
            .iter()
            .filter_map(|n| visible.iter().find(|c| c.get_name() == *n))
            .collect();
        if members.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{}{group}:{}", header.render(), header.render_reset());
        for c in members {
            let about = c.get_about().map(ToString::to_string).unwrap_or_default();
            // Padding outside the styling, as clap pads its own lists.
            let name = c.get_name();
            let _ = writeln!(
                out,
                "  {}{name}{}{:pad$}  {about}",
                literal.render(),
                literal.render_reset(),
                "",
                pad = width - name.len()
            );
        }
        out.push('\n');
    }
    out
}

/// `cmd` without its hidden subcommands and arguments, for the completion
/// generators, which list everything they are given (`agent-run` is the
/// supervisor's, never the user's).
pub fn visible(cmd: &Command) -> Command {
    let mut out = Command::new(cmd.get_name().to_string())
        .args(cmd.get_arguments().filter(|a| !a.is_hide_set()).cloned())
        // A group naming a hidden argument would name a missing one (the
        // derive's group of `supervise`'s fields): groups only constrain
        // parsing, which completions never do, so such a group goes.
        .groups(
            cmd.get_groups()
                .filter(|g| g.get_args().all(|id| visible_arg(cmd, id)))
                .cloned(),
        )
        .subcommands(
            cmd.get_subcommands()
                .filter(|c| !c.is_hide_set())
                .map(visible),
        );
    if let Some(about) = cmd.get_about() {
        out = out.about(about.clone());
    }
    if let Some(v) = cmd.get_version() {
        out = out.version(v.to_string());
    }
    out
}

fn visible_arg(cmd: &Command, id: &clap::Id) -> bool {
    cmd.get_arguments()
        .any(|a| a.get_id() == id && !a.is_hide_set())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built() -> Command {
        let mut cmd = command();
        cmd.build();
        cmd
    }

    #[test]
    fn every_visible_command_is_in_exactly_one_group() {
        let cmd = built();
        for c in cmd.get_subcommands().filter(|c| !c.is_hide_set()) {
            let n = GROUPS
                .iter()
                .filter(|(_, names)| names.contains(&c.get_name()))
                .count();
            assert_eq!(n, 1, "`{}` is in {n} groups of help::GROUPS", c.get_name());
        }
        for (group, names) in GROUPS {
            for name in *names {
                assert!(
                    cmd.find_subcommand(name).is_some(),
                    "group {group} names `{name}`, which is no command"
                );
            }
        }
        assert!(
            GROUPS.iter().all(|(_, n)| !n.contains(&"agent-run")),
            "agent-run is hidden and stays out of the groups"
        );
    }

    #[test]
    fn the_top_help_lists_each_visible_command_once_under_its_group() {
        let help = built().render_help().to_string();
        for (group, _) in GROUPS {
            assert!(help.contains(&format!("\n{group}:\n")), "{group}: {help}");
        }
        let cmd = built();
        for c in cmd.get_subcommands().filter(|c| !c.is_hide_set()) {
            let listed = help
                .lines()
                .filter(|l| {
                    l.starts_with("  ") && l.split_whitespace().next() == Some(c.get_name())
                })
                .count();
            assert_eq!(listed, 1, "`{}` once in: {help}", c.get_name());
        }
        assert!(!help.contains("agent-run"), "{help}");
        assert!(help.contains("Options:\n"), "{help}");
        assert!(help.contains("Exit codes:"), "{help}");
    }

    #[test]
    fn every_visible_command_at_any_depth_has_examples() {
        fn walk(cmd: &mut Command, path: &str) {
            // clap's `help` (and its copies of the commands) has no examples.
            for c in cmd
                .get_subcommands_mut()
                .filter(|c| !c.is_hide_set() && c.get_name() != "help")
            {
                let path = format!("{path} {}", c.get_name());
                let help = c.render_long_help().to_string();
                assert!(help.contains("\nExamples:\n  society "), "{path}: {help}");
                walk(c, &path);
            }
        }
        walk(&mut built(), "society");
    }

    #[test]
    fn visible_drops_hidden_commands_and_arguments_only() {
        let mut cmd = visible(&Cli::command());
        cmd.build();
        assert!(cmd.find_subcommand("agent-run").is_none());
        let sup = cmd
            .find_subcommand("supervise")
            .expect("supervise is visible");
        assert!(sup.get_arguments().all(|a| a.get_id() != "detached"));
        let all = built();
        let names = |c: &Command| -> Vec<String> {
            c.get_subcommands()
                .filter(|c| !c.is_hide_set())
                .map(|c| c.get_name().to_string())
                .collect()
        };
        assert_eq!(names(&cmd), names(&all));
        assert!(cmd.get_version().is_some());
    }
}
