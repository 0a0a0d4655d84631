//! Commands and the supervisor: a bad `society.toml` is said by the command
//! that would start one (and by `society check`), a command that starts one
//! says so, `--no-start` starts none; and the flags every user types
//! (`--timeout 5s`, `selftest --only`) behave.

use crate::support::{code, BIN, ECHO_TOML};
use society_core::lock::{self, LockState};
use society_testkit::Society;

fn supervisor_running(s: &Society) -> bool {
    matches!(
        lock::probe(&s.layout().supervisor_lock()),
        Ok(LockState::Held(_))
    )
}

#[test]
fn a_bad_society_toml_is_said_with_line_and_column_before_anything_starts() {
    let s = Society::new(BIN, &format!("{ECHO_TOML}\n[defualts]\n"));
    for args in [vec!["up"], vec!["spawn", "worker"], vec!["check"]] {
        let (rc, _, err) = code(&s, &args);
        assert_eq!(rc, 5, "society {args:?}: {err}");
        assert!(
            err.contains("society.toml") && err.contains("line") && err.contains("column"),
            "society {args:?} names file, line and column: {err}"
        );
        assert!(err.contains("defualts"), "{err}");
        assert!(!err.contains("daemon.log"), "not hidden in a log: {err}");
        assert!(!supervisor_running(&s), "society {args:?} started nothing");
    }
    std::fs::write(s.root().join("society.toml"), ECHO_TOML).unwrap();
    let (rc, out, err) = code(&s, &["check"]);
    assert_eq!(rc, 0, "{err}");
    assert!(out.starts_with("ok: "), "{out}");
    assert!(!supervisor_running(&s), "check starts nothing");
}

/// A society whose agents are provisioned (a supervisor ran once), with no
/// supervisor running.
fn provisioned() -> Society {
    let mut s = Society::new(BIN, ECHO_TOML);
    s.start_supervisor();
    assert!(s.stop_supervisor().success());
    s
}

#[test]
fn a_command_that_starts_the_supervisor_says_so_and_no_start_starts_none() {
    let s = provisioned();
    s.ok(&["case", "new", "first", "--no-start"]);
    for args in [
        vec!["send", "echo", "hi", "--no-start"],
        vec!["broadcast", "all of you", "--no-start"],
        vec!["spawn", "worker", "--no-start"],
        vec!["restart", "echo", "--no-start"],
        vec!["case", "new", "a case", "--no-start"],
    ] {
        let (rc, _, err) = code(&s, &args);
        assert_eq!(rc, 0, "society {args:?}: {err}");
        assert!(
            !supervisor_running(&s),
            "society {args:?} started a supervisor"
        );
    }
    let (rc, _, err) = code(&s, &["spawn", "worker", "--no-start", "--wait"]);
    assert_eq!(rc, 2, "--wait cannot wait without a supervisor: {err}");
    let (rc, _, err) = code(&s, &["send", "echo", "now"]);
    assert_eq!(rc, 0, "{err}");
    assert!(supervisor_running(&s));
    assert!(
        err.contains("started the supervisor (pid"),
        "a started supervisor is announced: {err:?}"
    );
    let (rc, _, err) = code(&s, &["send", "echo", "again"]);
    assert_eq!(rc, 0, "{err}");
    assert!(!err.contains("started"), "only when it starts one: {err:?}");
    s.ok(&["down"]);
}

#[test]
fn selftest_refuses_a_name_that_matches_nothing_and_lists_its_checks() {
    let s = Society::new(BIN, "");
    let (rc, out, err) = code(&s, &["selftest", "--only", "nosuch"]);
    assert_eq!(rc, 2, "{out}{err}");
    assert!(err.contains("nosuch") && err.contains("--list"), "{err}");
    let (rc, out, _) = code(&s, &["selftest", "--list"]);
    assert_eq!(rc, 0);
    assert_eq!(
        out.lines().count(),
        society_runtime::selftest::ALL.len(),
        "{out}"
    );
    assert!(out.lines().any(|l| l.starts_with("round_trip ")), "{out}");
}

#[test]
fn timeouts_take_one_duration_syntax() {
    let s = provisioned();
    for t in ["5s", "5", "1m", "500ms"] {
        let (rc, out, err) = code(&s, &["down", "--timeout", t]);
        assert_eq!(rc, 0, "--timeout {t}: {err}");
        assert!(out.contains("no supervisor was running"), "{out}");
    }
    let (rc, _, err) = code(&s, &["down", "--timeout", "soon"]);
    assert_eq!(rc, 2, "{err}");
    assert!(err.contains("30s"), "the error shows the syntax: {err}");
    let (rc, _, err) = code(&s, &["stop", "echo", "--timeout", "2s"]);
    assert_eq!(rc, 0, "{err}");
}

#[test]
fn a_bad_brain_kind_blames_the_flag_and_typos_never_suggest_the_hidden_command() {
    let s = Society::new(BIN, ECHO_TOML);
    let (rc, _, err) = code(&s, &["spawn", "x", "--brain", "bogus", "--no-start"]);
    assert_eq!(rc, 2, "{err}");
    assert!(err.contains("--brain"), "{err}");
    for kind in society_brains::KINDS {
        assert!(err.contains(kind), "lists {kind}: {err}");
    }
    assert!(!err.contains("society.toml"), "not the user's file: {err}");
    assert!(
        !s.root().join(".society-agent/agent-x-1").exists(),
        "nothing was created"
    );
    let (rc, _, err) = code(&s, &["get", "agents"]);
    assert_eq!(rc, 2, "{err}");
    assert!(!err.contains("agent-run"), "{err}");
    assert!(err.contains("society --help"), "{err}");
    let (rc, _, err) = code(&s, &["sttaus"]);
    assert_eq!(rc, 2);
    assert!(err.contains("'status'"), "real suggestions stay: {err}");
}

/// `society ARGS` in `cwd` with `SOCIETY_ROOT` set to `root` (None: unset).
fn in_dir(cwd: &std::path::Path, root: Option<&str>, args: &[&str]) -> (i32, String, String) {
    let mut c = std::process::Command::new(BIN);
    c.current_dir(cwd).args(args).env_remove("SOCIETY_ROOT");
    if let Some(r) = root {
        c.env("SOCIETY_ROOT", r);
    }
    let out = c.output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

#[test]
fn the_root_is_found_as_given_and_errors_say_what_was_looked_at() {
    let s = Society::new(BIN, ECHO_TOML);
    let other = tempfile::tempdir().unwrap();
    // An empty SOCIETY_ROOT is unset: the society above the cwd is used.
    let (rc, out, err) = in_dir(s.root(), Some(""), &["status"]);
    assert_eq!(rc, 0, "{err}");
    assert!(out.contains(&s.root().display().to_string()), "{out}");
    // --root pointing at the state directory itself: say so, and which root.
    let state = s.root().join(".society-agent");
    let (rc, _, err) = in_dir(
        other.path(),
        None,
        &["--root", state.to_str().unwrap(), "status"],
    );
    assert_eq!(rc, 4, "{err}");
    assert!(
        err.contains("given by --root") && err.contains("itself"),
        "{err}"
    );
    assert!(
        err.contains(&format!("use --root {}", s.root().display())),
        "{err}"
    );
    assert!(!err.contains("or pass --root"), "it was passed: {err}");
    // A SOCIETY_ROOT holding no society: named as such.
    let (rc, _, err) = in_dir(s.root(), Some(other.path().to_str().unwrap()), &["status"]);
    assert_eq!(rc, 4, "{err}");
    assert!(err.contains("given by SOCIETY_ROOT"), "{err}");
    // `init` with SOCIETY_ROOT set initialises the current directory.
    let (rc, _, err) = in_dir(other.path(), Some(s.root().to_str().unwrap()), &["init"]);
    assert_eq!(rc, 0, "{err}");
    assert!(other.path().join(".society-agent/format.json").is_file());
}
