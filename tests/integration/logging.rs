//! What the processes say on stderr and what they exit with, for people and
//! for systemd (issue 10, items 4, 13 and 14): `supervise` logs its
//! lifecycle at info (journald-style when stderr is the journal), `-v`
//! shows what a client command does, the shipped systemd unit parses,
//! supervisor-written events carry the agent's real generation, and "it is
//! already so" is exit 0 while "it is someone else's" is exit 3.

use crate::support::{code, BIN, ECHO_TOML, SOON};
use serde_json::Value;
use society_testkit::{records, wait_until, Society};
use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The lines of `log` that mention `what`.
fn lines_with<'a>(log: &'a str, what: &str) -> Vec<&'a str> {
    log.lines().filter(|l| l.contains(what)).collect()
}

#[test]
fn supervise_logs_its_lifecycle_at_info_without_colours() {
    let mut s = Society::new(BIN, ECHO_TOML);
    // `start_supervisor` runs `society supervise` with stderr = daemon.log:
    // a file, as under `society up`.
    let pid = s.start_supervisor();
    let log_path = s.layout().daemon_log();
    let started = wait_until(SOON, "an `agent started` line for echo", || {
        let log = read(&log_path);
        log.lines()
            .find(|l| l.contains("agent started") && l.contains("agent=echo"))
            .map(str::to_string)
    });
    let log = read(&log_path);
    assert!(
        !log.contains('\u{1b}'),
        "no ANSI escapes in a file: {log:?}"
    );
    let start = lines_with(&log, "supervisor started");
    assert_eq!(start.len(), 1, "{log}");
    assert!(
        start[0].contains(" INFO ") && start[0].contains(&format!("pid={pid}")),
        "{log}"
    );
    assert!(
        start[0].contains(&format!("root={}", s.root().display())),
        "{log}"
    );
    assert!(start[0].starts_with("20"), "a file gets timestamps: {log}");
    // The line is written as the process is spawned, before it takes its lock.
    let agent_pid = wait_until(SOON, "echo to hold its lock", || s.agent_pid("echo"));
    for field in [" INFO ", &format!("pid={agent_pid}"), "gen=1", "reason="] {
        assert!(started.contains(field), "{field} in {started}");
    }
    s.stop_supervisor();
    let log = read(&log_path);
    for what in ["supervisor stopping", "agent exited", "supervisor stopped"] {
        assert_eq!(lines_with(&log, what).len(), 1, "{what}: {log}");
    }
    assert!(
        lines_with(&log, "agent exited")[0].contains("stop_reason=shutdown"),
        "{log}"
    );
}

#[test]
fn supervise_under_journald_prints_priorities_and_no_timestamps() {
    use std::os::unix::fs::MetadataExt;
    let mut s = Society::new(BIN, ECHO_TOML);
    let log_path = s.layout().daemon_log();
    std::fs::write(&log_path, "").unwrap();
    // What systemd does: JOURNAL_STREAM names the stream stderr is.
    let meta = std::fs::metadata(&log_path).unwrap();
    let stream = format!("{}:{}", meta.dev(), meta.ino());
    s.start_supervisor_with(&[("JOURNAL_STREAM", &stream)]);
    let started = wait_until(SOON, "an `agent started` line", || {
        let log = read(&log_path);
        lines_with(&log, "agent started")
            .first()
            .map(|l| l.to_string())
    });
    assert!(
        started.starts_with("<6> INFO agent started"),
        "priority 6 (info), no timestamp: {started:?}"
    );
    assert!(started.contains("agent=echo") && started.contains("gen=1"));
    s.stop_supervisor();
}

#[test]
fn verbose_client_commands_say_what_they_do() {
    let s = Society::new(BIN, ECHO_TOML);
    // A JOURNAL_STREAM inherited from a service does not describe a pipe:
    // the lines keep their timestamps.
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let out = s
            .command(args)
            .env_remove("RUST_LOG")
            .env("JOURNAL_STREAM", "1:1")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let up = run(&["-v", "up"], &[]);
    let status: Value = serde_json::from_str(&s.ok(&["status", "--json"])).unwrap();
    let pid = status["supervisor"]["pid"]
        .as_u64()
        .expect("a supervisor runs");
    assert!(
        up.contains("no supervisor runs: starting one")
            && lines_with(&up, "the supervisor is ready")
                .iter()
                .any(|l| l.contains(&format!("pid={pid}"))),
        "-v up: {up}"
    );
    let quiet = run(&["send", "echo", "hi"], &[]);
    assert_eq!(quiet, "", "no log lines without -v");
    let err = run(&["-v", "send", "echo", "hi"], &[]);
    let line = lines_with(&err, "the supervisor runs");
    assert_eq!(line.len(), 1, "-v: {err}");
    assert!(
        line[0].contains(" INFO ")
            && line[0].contains(&format!("pid={pid}"))
            && line[0].contains(&format!("root={}", s.root().display())),
        "{err}"
    );
    assert!(line[0].starts_with("20"), "timestamped: {err}");
    assert!(
        !err.contains('\u{1b}'),
        "no ANSI escapes in a pipe: {err:?}"
    );
    let debug = run(
        &["send", "echo", "hi", "--no-start"],
        &[("RUST_LOG", "debug")],
    );
    assert!(
        debug.contains("DEBUG") && debug.contains("probed the supervisor's lock"),
        "RUST_LOG=debug: {debug}"
    );
    let vv = run(&["-vv", "send", "echo", "hi", "--no-start"], &[]);
    assert!(vv.contains("DEBUG"), "-vv: {vv}");
    s.ok(&["down"]);
}

#[test]
fn supervisor_events_carry_the_agents_generation() {
    let mut s = Society::new(BIN, ECHO_TOML);
    s.start_supervisor();
    s.wait_state("echo", "idle", SOON);
    s.ok(&["restart", "echo"]);
    wait_until(SOON, "generation 2 running", || {
        (s.status("echo")["generation"] == 2 && s.agent_pid("echo").is_some()).then_some(())
    });
    s.ok(&["restart", "echo"]);
    wait_until(SOON, "generation 3 running", || {
        (s.status("echo")["generation"] == 3 && s.agent_pid("echo").is_some()).then_some(())
    });
    s.stop_supervisor();
    // The generation each process gave itself, by pid, from its own log.
    let own: HashMap<u64, u64> = records(&s.agent("echo").activity())
        .iter()
        .filter(|r| r["event"] == "started")
        .map(|r| (r["pid"].as_u64().unwrap(), r["gen"].as_u64().unwrap()))
        .collect();
    assert_eq!(own.len(), 3, "three processes: {own:?}");
    let events: Vec<Value> = records(&s.layout().system_events())
        .into_iter()
        .filter(|r| r["agent"] == "echo")
        .collect();
    let mut checked = 0;
    for ev in &events {
        if let Some(pid) = ev["pid"].as_u64() {
            assert_eq!(
                ev["gen"].as_u64(),
                own.get(&pid).copied(),
                "the generation of pid {pid}: {ev}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 6, "three starts and three exits: {events:?}");
    let stopping: Vec<u64> = events
        .iter()
        .filter(|r| r["event"] == "agent_stopping")
        .map(|r| r["gen"].as_u64().unwrap())
        .collect();
    assert_eq!(stopping, [1, 2, 3], "restart, restart, shutdown");
}

#[test]
fn ensuring_a_state_is_idempotent_and_taking_a_used_one_is_exit_3() {
    let s = Society::new(BIN, ECHO_TOML);
    let up = s.ok(&["up"]);
    let pid = up
        .split("pid ")
        .nth(1)
        .and_then(|t| t.split(')').next())
        .expect("up names the pid")
        .to_string();
    // Ensuring: already so, exit 0, and says so.
    let (rc, out, _) = code(&s, &["up"]);
    assert_eq!(rc, 0, "{out}");
    assert_eq!(
        out.trim(),
        format!("supervisor already running (pid {pid})")
    );
    let (rc, out, _) = code(&s, &["init"]);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("already initialised"), "{out}");
    // Taking: someone else's, exit 3, naming the holder, with a way out.
    let (rc, _, err) = code(&s, &["supervise"]);
    assert_eq!(rc, 3, "{err}");
    assert!(
        err.contains("already running") && err.contains(&format!("pid {pid}")),
        "{err}"
    );
    assert!(err.contains("hint:") && err.contains("down"), "{err}");
    let root = s.root().display().to_string();
    let (rc, out, err) = code(&s, &["demo", "--dir", &root]);
    assert_eq!(rc, 3, "{out}{err}");
    assert!(
        err.contains(&format!("{root} already holds a society"))
            && err.contains(&format!("pid {pid}")),
        "{err}"
    );
    assert!(err.contains("hint:") && err.contains("--dir"), "{err}");
    let status: Value = serde_json::from_str(&s.ok(&["status", "--json"])).unwrap();
    assert_eq!(
        status["supervisor"]["pid"].to_string(),
        pid,
        "the running supervisor is untouched"
    );
    s.ok(&["down"]);
    // Without a supervisor the directory is still taken.
    let (rc, _, err) = code(&s, &["demo", "--dir", &root]);
    assert_eq!(rc, 3, "{err}");
    let (_, help, _) = code(&s, &["--help"]);
    assert!(help.contains("3 in use"), "{help}");
}

/// `systemd-analyze`, if this machine has it.
fn systemd_analyze() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([std::path::PathBuf::from("/usr/bin")])
        .map(|d| d.join("systemd-analyze"))
        .find(|p| p.is_file())
}

/// What `systemd-analyze verify --user` objects to in `unit` (its exit
/// status and everything it printed), or `None` if nothing. A bad key or
/// value is only a warning there (exit 0), so a clean unit prints nothing.
fn unit_problems(analyze: &Path, unit: &Path) -> Option<String> {
    // In a container there is no user session: give the user manager a
    // runtime directory of its own.
    let runtime = tempfile::tempdir().unwrap();
    let out = Command::new(analyze)
        .args(["verify", "--user", "--man=no"])
        .arg(unit)
        .env("XDG_RUNTIME_DIR", runtime.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (!out.status.success() || !said.trim().is_empty()).then(|| format!("{}: {said}", out.status))
}

#[test]
fn the_systemd_unit_parses() {
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/society.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    for line in [
        "ExecStart=%h/.cargo/bin/society --root %h/team supervise",
        "Restart=on-failure",
        "KillMode=mixed",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in {text}");
    }
    let Some(analyze) = systemd_analyze() else {
        eprintln!("skipped: no systemd-analyze on this machine; the unit's syntax is unchecked");
        return;
    };
    // verify checks that ExecStart's binary exists: point it at this build.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("society.service");
    std::fs::write(&copy, text.replace("%h/.cargo/bin/society", BIN)).unwrap();
    if let Some(problems) = unit_problems(&analyze, &copy) {
        panic!("contrib/society.service: {problems}");
    }
    // The check can fail: a misspelt key and a bad value are caught.
    for (good, bad) in [
        ("Restart=on-failure", "Restrat=on-failure"),
        ("KillMode=mixed", "KillMode=sometimes"),
    ] {
        let broken = dir.path().join("broken.service");
        std::fs::write(
            &broken,
            text.replace("%h/.cargo/bin/society", BIN)
                .replace(good, bad),
        )
        .unwrap();
        assert!(
            unit_problems(&analyze, &broken).is_some(),
            "{bad} went unnoticed"
        );
    }
}
