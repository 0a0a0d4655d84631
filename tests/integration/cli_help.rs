//! The command line a kubectl, journalctl or pueue user expects: completion
//! scripts a shell loads, man pages `man` renders without a warning, help
//! that groups the commands and shows examples, progress only on a terminal,
//! and notes on a dead stderr that cost nothing but themselves.
//!
//! A shell or tool this machine lacks (zsh, fish, `script` for a pseudo
//! terminal) skips its part with a printed reason.

use crate::support::{BIN, SOON};
use society_testkit::{processes_mentioning, records, wait_until, Society};
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `society ARGS` outside any society.
fn society(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("SOCIETY_ROOT")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The stdout of `society ARGS`, which must succeed with nothing on stderr.
fn stdout_of(args: &[&str]) -> String {
    let out = society(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "society {args:?}: {err}");
    assert!(err.is_empty(), "society {args:?}: {err}");
    String::from_utf8(out.stdout).unwrap()
}

/// Is `program` on PATH? If not, says which test part is skipped and why.
fn have(program: &str, part: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success();
    if !found {
        println!("skipped: {part} ({program} is not installed)");
    }
    found
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

/// The visible commands `society --help` lists under its group headings.
fn listed_commands() -> Vec<String> {
    let help = stdout_of(&["--help"]);
    let commands = help.split("\nOptions:").next().unwrap();
    commands
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(String::from)
        .collect()
}

#[test]
fn bash_loads_the_completion_script_and_it_completes_commands() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("society.bash");
    std::fs::write(&script, stdout_of(&["completions", "bash"])).unwrap();
    // What bash does on TAB: fill COMP_* and call the registered function.
    let probe = r#"source "$1" || exit 9
complete -p society || exit 8
tab() {
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()
    _society society "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    echo "${COMPREPLY[*]}"
}
tab society sta
tab society a
tab society case ''
tab society completions ''
"#;
    let (rc, out, err) = run(Command::new("bash")
        .args(["--norc", "--noprofile", "-c", probe, "probe"])
        .arg(&script));
    assert_eq!(rc, 0, "{out}{err}");
    assert!(err.is_empty(), "sourcing printed: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    assert!(lines[0].ends_with("-F _society society"), "{out}");
    assert_eq!(lines[1], "status", "society sta<TAB>: {out}");
    let a: Vec<&str> = lines[2].split(' ').collect();
    assert_eq!(
        a,
        ["approvals", "approve", "alternatives"],
        "society a<TAB>: {out}"
    );
    assert!(
        lines[3].contains("new show list close"),
        "society case <TAB>: {out}"
    );
    assert!(
        lines[4].contains("bash elvish fish powershell zsh"),
        "{out}"
    );
}

#[test]
fn zsh_and_fish_load_their_completion_scripts_where_installed() {
    let dir = tempfile::tempdir().unwrap();
    if have("zsh", "the zsh completion check") {
        let script = dir.path().join("_society");
        std::fs::write(&script, stdout_of(&["completions", "zsh"])).unwrap();
        let (rc, out, err) = run(Command::new("zsh")
            .args([
                "-f",
                "-c",
                r#"autoload -Uz compinit && compinit -u -D && source "$1" && print -r -- $_comps[society]"#,
                "probe",
            ])
            .arg(&script));
        assert_eq!((rc, out.trim(), err.as_str()), (0, "_society", ""));
    }
    if have("fish", "the fish completion check") {
        let script = dir.path().join("society.fish");
        std::fs::write(&script, stdout_of(&["completions", "fish"])).unwrap();
        let probe = format!(
            "source {}; and complete -C 'society sta'; and complete -C 'society agent'",
            script.display()
        );
        let (rc, out, err) = run(Command::new("fish").args(["--no-config", "-c", &probe]));
        assert_eq!(rc, 0, "{out}{err}");
        assert!(err.is_empty(), "{err}");
        assert!(out.starts_with("status\t"), "society sta<TAB>: {out}");
        assert!(!out.contains("agent-run"), "{out}");
    }
}

/// `man -l FILE` as a user reads it, with groff's warnings on; its exit
/// code, the page and stderr.
fn man(page: &Path) -> (i32, String, String) {
    run(Command::new("man")
        .args(["-l", "-P", "cat"])
        .arg(page)
        .env("COLUMNS", "100")
        .env("MANWIDTH", "100")
        .env("MANROFFOPT", "-ww"))
}

#[test]
fn the_man_page_renders_without_a_warning() {
    if !have("man", "rendering the man page") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("society.1");
    std::fs::write(&page, stdout_of(&["man"])).unwrap();
    let (rc, out, err) = man(&page);
    assert_eq!(rc, 0, "{err}");
    assert!(!err.contains("warning"), "{err}");
    for section in [
        "NAME",
        "SYNOPSIS",
        "OPTIONS",
        "SUBCOMMANDS",
        "EXAMPLES",
        "EXIT CODES",
    ] {
        assert!(out.contains(&format!("\n{section}\n")), "{section}: {out}");
    }
    assert!(out.contains("society-status(1)"), "{out}");
    assert!(
        out.contains("\n         society init && society up\n"),
        "examples one a line: {out}"
    );
    assert!(!out.contains("agent-run"), "{out}");
}

#[test]
fn man_dir_writes_a_page_per_visible_command_and_every_help_has_examples() {
    let dir = tempfile::tempdir().unwrap();
    let mandir = dir.path().join("man1");
    let written = stdout_of(&["man", "--dir", mandir.to_str().unwrap()]);
    let mut pages: Vec<String> = std::fs::read_dir(&mandir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    assert_eq!(written.lines().count(), pages.len(), "{written}");
    // The commands with a page of their own (not nested) are the ones the
    // help lists, and the other way round.
    let listed = listed_commands();
    let mut top: Vec<&str> = pages
        .iter()
        .filter_map(|p| p.strip_prefix("society-")?.strip_suffix(".1"))
        .filter(|name| !listed.iter().any(|l| name.starts_with(&format!("{l}-"))))
        .collect();
    top.sort();
    let mut listed: Vec<&str> = listed.iter().map(String::as_str).collect();
    listed.sort();
    assert_eq!(top, listed, "pages vs `society --help`");
    assert!(pages.contains(&"society.1".to_string()), "{pages:?}");
    assert!(
        pages.contains(&"society-case-new.1".to_string()),
        "{pages:?}"
    );
    assert!(
        !pages
            .iter()
            .any(|p| p.contains("agent-run") || p.contains("help")),
        "{pages:?}"
    );
    let man_here = have("man", "rendering each page");
    for page in &pages {
        // society-case-new.1 is `society case new --help`.
        let words: Vec<&str> = page.trim_end_matches(".1").split('-').skip(1).collect();
        for flag in ["--help", "-h"] {
            let args: Vec<&str> = words.iter().copied().chain([flag]).collect();
            let help = stdout_of(&args);
            assert!(
                help.contains("\nExamples:\n  society "),
                "society {args:?} has no example: {help}"
            );
        }
        if man_here {
            let (rc, out, err) = man(&mandir.join(page));
            assert_eq!(rc, 0, "{page}: {err}");
            assert!(!err.contains("warning"), "{page}: {err}");
            assert!(out.contains("\nEXAMPLES\n"), "{page}: {out}");
        }
    }
}

#[test]
fn the_top_help_lists_every_command_once_under_a_group() {
    let help = stdout_of(&["--help"]);
    let headings = [
        "Lifecycle:",
        "Messages:",
        "Cases and approvals:",
        "Inspection:",
        "Maintenance:",
        "Options:",
    ];
    let at: Vec<usize> = headings
        .iter()
        .map(|h| {
            help.find(&format!("\n{h}\n"))
                .unwrap_or_else(|| panic!("{h}: {help}"))
        })
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "in order: {help}");
    let listed = listed_commands();
    for name in [
        "init",
        "up",
        "spawn",
        "send",
        "broadcast",
        "case",
        "approve",
        "status",
        "fsck",
        "completions",
        "man",
    ] {
        assert_eq!(
            listed.iter().filter(|n| *n == name).count(),
            1,
            "{name}: {help}"
        );
    }
    let mut unique = listed.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), listed.len(), "a command listed twice: {help}");
    assert!(!help.contains("agent-run"), "{help}");
    assert!(
        !help.contains('\x1b'),
        "no styling off a terminal: {help:?}"
    );
    assert!(help.contains("\nExamples:\n  society "), "{help}");
}

#[test]
fn init_help_says_what_dir_defaults_to_and_that_it_is_idempotent() {
    let help = stdout_of(&["init", "--help"]);
    assert!(
        help.contains("DIR defaults to --root if given, else the current directory"),
        "{help}"
    );
    assert!(help.contains("idempotent"), "{help}");
    assert!(help.contains("never overwritten"), "{help}");
}

/// Runs `cmd` with its stderr a pipe whose reader is gone: every note it
/// writes fails with EPIPE (SIGPIPE is ignored by Rust programs).
fn with_dead_stderr(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    child.wait_with_output().unwrap()
}

/// The same with stderr on a full disk.
fn with_full_stderr(mut cmd: Command) -> Output {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    cmd.stdin(Stdio::null()).stderr(full).output().unwrap()
}

#[test]
fn a_dead_or_full_stderr_costs_the_notes_not_the_work() {
    const TOML: &str = r#"
[[agent]]
id = "big"
role = "echo"
brain = "echo"

[[agent]]
id = "small"
role = "echo"
brain = "echo"
policy = { max_record = 400 }
"#;
    let mut s = Society::new(BIN, TOML);
    s.start_supervisor();
    assert!(s.stop_supervisor().success());

    // spawn notes that it updated an existing agent's config.
    s.ok(&["spawn", "echo", "--id", "extra", "--no-start"]);
    for (how, out) in [
        (
            "dead",
            with_dead_stderr(s.command(&[
                "spawn",
                "echo",
                "--id",
                "extra",
                "--keep-alive",
                "--no-start",
            ])),
        ),
        (
            "full",
            with_full_stderr(s.command(&[
                "spawn",
                "echo",
                "--id",
                "big",
                "--keep-alive",
                "--no-start",
            ])),
        ),
    ] {
        assert_eq!(out.status.code(), Some(0), "spawn with a {how} stderr");
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let cfg: serde_json::Value =
            serde_json::from_slice(&std::fs::read(s.agent(&id).config()).unwrap()).unwrap();
        assert_eq!(
            cfg["keep_alive"], true,
            "spawn with a {how} stderr updated {id}"
        );
    }

    // broadcast notes the copy it could not deliver (too big for `small`),
    // delivers the others, and fails with the failure's own code.
    let body = "x".repeat(1000);
    let out = with_dead_stderr(s.command(&["broadcast", &body, "--no-start"]));
    assert_eq!(
        out.status.code(),
        Some(5),
        "the oversize copy's code, not a panic's 101"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let sent: Vec<(&str, &str)> = stdout.lines().filter_map(|l| l.split_once(' ')).collect();
    assert_eq!(
        sent.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
        ["big", "extra"],
        "{stdout}"
    );
    for (agent, msg) in sent {
        assert_eq!(records(&s.agent(agent).inbox())[0]["id"], msg, "{stdout}");
    }
    assert!(records(&s.agent("small").inbox()).is_empty());

    // selftest --json notes its summary on stderr.
    let out = with_dead_stderr(s.command(&[
        "selftest",
        "--quick",
        "--only",
        "lock_contention",
        "--json",
    ]));
    assert_eq!(out.status.code(), Some(0), "selftest with a dead stderr");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["passed"], 1, "{report}");
}

/// Runs `shell_line` under `script`, in a pseudo terminal: its stdout and
/// stderr are a terminal unless the line redirects them. What the terminal
/// showed, and the exit code.
fn on_a_terminal(shell_line: &str) -> (i32, String) {
    let (rc, out, err) = run(Command::new("script")
        .args(["-qec", shell_line, "/dev/null"])
        .env("COLUMNS", "120")
        .env("TERM", "xterm"));
    (rc, format!("{out}{err}"))
}

fn quoted(p: &Path) -> String {
    format!("'{}'", p.display())
}

#[test]
fn selftest_progress_is_drawn_on_a_terminal_stderr_only() {
    let s = Society::new(BIN, "");
    let args = ["selftest", "--quick", "--only", "lock_contention"];
    // Not a terminal: the report on stdout, nothing on stderr.
    let out = s.run(&args);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stderr.is_empty(), "progress off a terminal: {stderr:?}");
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("PASS ")).count(),
        1,
        "{stdout}"
    );
    if !have("script", "progress on a terminal") {
        return;
    }
    // stderr a terminal, stdout a file: the bar on the one, the report alone
    // in the other.
    let report = s.root().join("report.txt");
    let line = format!(
        "{} --root {} {} > {}",
        quoted(Path::new(BIN)),
        quoted(s.root()),
        args.join(" "),
        quoted(&report)
    );
    let (rc, shown) = on_a_terminal(&line);
    assert_eq!(rc, 0, "{shown}");
    assert!(
        shown.contains("] 0/1 lock_contention"),
        "a bar on the terminal: {shown:?}"
    );
    let report = std::fs::read_to_string(&report).unwrap();
    assert!(report.starts_with("PASS lock_contention "), "{report:?}");
    assert!(
        !report.contains('\x1b') && !report.contains("0/1"),
        "{report:?}"
    );
}

#[test]
fn the_demo_setup_spins_on_a_terminal_and_stdout_stays_the_story() {
    if !have("script", "the demo's spinner on a terminal") {
        return;
    }
    // Scratch kills every process naming its directory when dropped.
    let dir = society_runtime::selftest::Scratch::empty(BIN, "society-test-").unwrap();
    let root = dir.root().join("demo");
    let story = dir.root().join("story.txt");
    let line = format!(
        "{} demo --dir {} > {}",
        quoted(Path::new(BIN)),
        quoted(&root),
        quoted(&story)
    );
    let (rc, shown) = on_a_terminal(&line);
    let story = std::fs::read_to_string(&story).unwrap_or_default();
    assert_eq!(rc, 0, "{shown}{story}");
    for step in [
        "starting the supervisor",
        "opening case 1/3: honeybees",
        "opening case 3/3: volcanoes",
    ] {
        assert!(shown.contains(step), "{step}: {shown:?}");
    }
    assert!(story.contains("→ sent task volcanoes"), "{story}");
    assert!(
        !story.contains("opening case") && !story.contains('\x1b'),
        "{story:?}"
    );
    wait_until(SOON, "every demo process to be gone", || {
        processes_mentioning(&root).is_empty().then_some(())
    });
}

#[test]
fn fsck_shows_its_progress_on_a_terminal_stderr_only() {
    let s = Society::new(BIN, crate::support::ECHO_TOML);
    let out = s.run(&["fsck"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.is_empty(), "progress off a terminal: {stderr:?}");
    if !have("script", "fsck's bar on a terminal") {
        return;
    }
    let report = s.root().join("fsck.txt");
    let line = format!(
        "{} --root {} fsck > {}",
        quoted(Path::new(BIN)),
        quoted(s.root()),
        quoted(&report)
    );
    let (rc, shown) = on_a_terminal(&line);
    assert_eq!(rc, 0, "{shown}");
    assert!(shown.contains("] 0/"), "a bar on the terminal: {shown:?}");
    let report = std::fs::read_to_string(&report).unwrap();
    assert!(
        !report.contains('\x1b') && !report.contains("] 0/"),
        "{report:?}"
    );
}
