//! Shared context (SOCIETY.md O8): `society shared put` publishes a file of
//! the society as the next version of a shared file, keeps every earlier
//! version, never gives two puts the same number — even from several
//! processes at once — and refuses what is not a file of the society.

use crate::support::{code, json_of, BIN};
use society_testkit::{records, Society};
use std::process::Stdio;

const EMPTY: &str = "";

#[test]
fn puts_are_versions_and_every_version_stays_readable() {
    let s = Society::new(BIN, EMPTY);
    let bible = s.root().join("bible.md");
    std::fs::write(&bible, "Episode 1: the storm.\n").unwrap();
    let bible_arg = bible.to_str().unwrap();
    assert_eq!(s.ok(&["shared", "put", bible_arg]).trim(), "bible.md v1");
    std::fs::write(&bible, "Episode 1: the calm.\n").unwrap();
    let v2 = json_of(&s, &["shared", "put", bible_arg, "-o", "json"]);
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["by"], "orchestrator");
    assert_eq!(v2["bytes"], 21);
    assert_eq!(v2["sha256"].as_str().unwrap().len(), 64);
    // Agents read the live file; `show` gives any version.
    let live = s.layout().shared_dir().join("bible.md");
    assert_eq!(
        std::fs::read_to_string(&live).unwrap(),
        "Episode 1: the calm.\n"
    );
    let raw = |args: &[&str]| String::from_utf8(s.run(args).stdout).unwrap();
    assert_eq!(
        raw(&["shared", "show", "bible.md", "--version", "1"]),
        "Episode 1: the storm.\n",
        "byte for byte"
    );
    assert_eq!(
        raw(&["shared", "show", "bible.md"]),
        "Episode 1: the calm.\n"
    );
    let one = json_of(
        &s,
        &["shared", "show", "bible.md", "--version", "1", "-o", "json"],
    );
    assert_eq!(one["content"], "Episode 1: the storm.\n");
    assert_eq!(one["version"], 1);
    // Another name, from a subfolder, under a name of its own.
    std::fs::create_dir_all(s.root().join("docs")).unwrap();
    std::fs::write(s.root().join("docs/style.txt"), "short sentences").unwrap();
    let style = s.root().join("docs/style.txt");
    s.ok(&[
        "shared",
        "put",
        style.to_str().unwrap(),
        "--as",
        "style-guide.txt",
    ]);
    let list = json_of(&s, &["shared", "list", "-o", "json"]);
    let names: Vec<(&str, u64)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v["version"].as_u64().unwrap()))
        .collect();
    assert_eq!(names, [("bible.md", 2), ("style-guide.txt", 1)]);
    let log = records(&s.layout().shared_log());
    assert_eq!(log.len(), 3, "{log:?}");
    let (rc, _, err) = code(&s, &["shared", "show", "bible.md", "--version", "3"]);
    assert_eq!(rc, 4, "{err}");
    assert!(err.contains("has no version 3 (latest: 2)"), "{err}");
    let (rc, _, err) = code(&s, &["shared", "show", "nothing.md"]);
    assert_eq!(rc, 4, "{err}");
    assert!(err.contains("no shared file nothing.md"), "{err}");
}

#[test]
fn concurrent_puts_from_several_processes_get_distinct_consecutive_versions() {
    let s = Society::new(BIN, EMPTY);
    const N: usize = 8;
    for i in 0..N {
        std::fs::write(s.root().join(format!("s{i}.txt")), format!("schedule {i}")).unwrap();
    }
    let children: Vec<_> = (0..N)
        .map(|i| {
            let file = s.root().join(format!("s{i}.txt"));
            s.command(&[
                "shared",
                "put",
                file.to_str().unwrap(),
                "--as",
                "schedule.txt",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let log = records(&s.layout().shared_log());
    let mut versions: Vec<u64> = log.iter().map(|v| v["version"].as_u64().unwrap()).collect();
    versions.sort();
    assert_eq!(versions, (1..=N as u64).collect::<Vec<_>>(), "{log:?}");
    // Every version holds the content its put wrote.
    for v in &log {
        let n = v["version"].as_u64().unwrap().to_string();
        let content = s.ok(&["shared", "show", "schedule.txt", "--version", &n]);
        let sha = society_runtime::client::shared::sha256_hex(content.as_bytes());
        assert_eq!(v["sha256"], sha.as_str(), "version {n}");
        assert!(content.starts_with("schedule "), "{content}");
    }
    let contents: std::collections::BTreeSet<String> = (1..=N)
        .map(|n| {
            s.ok(&[
                "shared",
                "show",
                "schedule.txt",
                "--version",
                &n.to_string(),
            ])
        })
        .collect();
    assert_eq!(contents.len(), N, "no put overwrote another's version");
}

#[test]
fn what_is_not_a_file_of_the_society_is_refused() {
    let s = Society::new(BIN, EMPTY);
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.txt");
    std::fs::write(&secret, "not yours").unwrap();
    std::fs::write(s.root().join("ok.txt"), "fine").unwrap();
    std::os::unix::fs::symlink(&secret, s.root().join("link.txt")).unwrap();
    std::fs::create_dir_all(s.root().join("dir")).unwrap();
    let secret_arg = secret.to_str().unwrap();
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec![secret_arg], 5, "is outside the society"),
        (vec!["link.txt"], 5, "(it resolves to"),
        (vec!["missing.txt"], 4, "missing.txt does not exist"),
        (vec!["dir"], 5, "is not a regular file"),
        (
            vec!["ok.txt", "--as", "../x"],
            5,
            "invalid shared name \"../x\"",
        ),
        (vec!["ok.txt", "--as", "a/b"], 5, "not a path"),
        (vec!["ok.txt", "--as", "/etc/passwd"], 5, "not a path"),
        (
            vec!["ok.txt", "--as", ".versions.jsonl"],
            5,
            "may not start with `.`",
        ),
    ];
    for (args, rc, says) in cases {
        let (got, out, err) = put_here(&s, &args);
        assert_eq!(got, rc, "{args:?}: {out}{err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert!(records(&s.layout().shared_log()).is_empty(), "nothing put");
    assert!(
        !s.layout().shared_dir().join("link.txt").exists()
            && !s.layout().shared_dir().join("secret.txt").exists()
    );
    // The society's own files are fine.
    assert_eq!(put_here(&s, &["ok.txt"]).0, 0);
}

/// `society shared put ARGS` run in the society's root, as a user would.
fn put_here(s: &Society, args: &[&str]) -> (i32, String, String) {
    let out = s
        .command(&[&["shared", "put"], args].concat())
        .current_dir(s.root())
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

const PUBLISHERS: &str = r#"
[defaults]
idle_exit = "2s"
heartbeat = "100ms"

[[agent]]
id = "writer"
policy = { shared_write = true }
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "publish"
actions = [{ do = "send", to = "supervisor", type = "shared_put", body = { name = "{{body.name}}", path = "{{body.path}}" } }]

[[agent]]
id = "intern"
[agent.brain]
kind = "script"
[[agent.brain.rules]]
type = "publish"
actions = [{ do = "send", to = "supervisor", type = "shared_put", body = { name = "{{body.name}}", path = "{{body.path}}" } }]
"#;

/// Asks `agent` to publish `path` (in its folder) as `name`.
fn publish(s: &Society, agent: &str, name: &str, path: &str) {
    let body = serde_json::json!({"name": name, "path": path}).to_string();
    s.ok(&["send", agent, "--type", "publish", "--json", &body]);
}

/// The first message of `kind` in `agent`'s inbox whose body says `name`.
fn answer(s: &Society, agent: &str, kind: &str, needle: &str) -> serde_json::Value {
    society_testkit::wait_until(crate::support::SOON, &format!("{kind} for {agent}"), || {
        records(&s.agent(agent).inbox())
            .into_iter()
            .find(|r| r["type"] == kind && r["body"].to_string().contains(needle))
    })
}

#[test]
fn an_agent_whose_policy_allows_it_publishes_and_others_are_told_why_not() {
    let mut s = Society::new(BIN, PUBLISHERS);
    s.start_supervisor();
    let out = s
        .agent("writer")
        .inbox()
        .parent()
        .unwrap()
        .join("workspace/output");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("bible.md"), "from the writer").unwrap();
    publish(&s, "writer", "bible.md", "workspace/output/bible.md");
    let done = answer(&s, "writer", "shared_put_done", "bible.md");
    assert_eq!(done["body"]["version"], 1);
    assert_eq!(
        std::fs::read_to_string(s.layout().shared_dir().join("bible.md")).unwrap(),
        "from the writer"
    );
    let log = records(&s.layout().shared_log());
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["by"], "writer");
    // Not allowed by its policy.
    publish(&s, "intern", "bible.md", "workspace/output/bible.md");
    let no = answer(&s, "intern", "message_blocked", "shared_put");
    let reason = no["body"]["reason"].as_str().unwrap();
    assert!(reason.contains("may not write shared context"), "{reason}");
    // Out of its folder, a bad name, a missing file.
    publish(&s, "writer", "x.md", "../agent-intern/config.json");
    let bad = answer(&s, "writer", "message_blocked", "config.json");
    assert!(bad["body"]["reason"]
        .as_str()
        .unwrap()
        .contains("may not contain `..`"));
    publish(&s, "writer", "../x", "workspace/output/bible.md");
    answer(&s, "writer", "message_blocked", "invalid shared name");
    // A symlink out of its folder (to the society's own config) fails.
    std::os::unix::fs::symlink(s.root().join("society.toml"), out.join("cfg.md")).unwrap();
    publish(&s, "writer", "cfg.md", "workspace/output/cfg.md");
    let out_of = answer(&s, "writer", "shared_put_failed", "cfg.md");
    assert!(
        out_of["body"]["error"]
            .as_str()
            .unwrap()
            .contains("is outside agent writer's folder"),
        "{out_of}"
    );
    publish(&s, "writer", "gone.md", "workspace/output/gone.md");
    let failed = answer(&s, "writer", "shared_put_failed", "gone.md");
    assert!(failed["body"]["error"]
        .as_str()
        .unwrap()
        .contains("does not exist"));
    assert_eq!(
        records(&s.layout().shared_log()).len(),
        1,
        "nothing else put"
    );
}

#[test]
fn an_agents_put_is_applied_and_answered_once_across_a_supervisor_crash() {
    let mut s = Society::new(BIN, PUBLISHERS);
    // The supervisor aborts after the put, before its answer is written.
    s.start_supervisor_with(&[("SOCIETY_FAULTS", "supervisor.shared.put")]);
    let out = s
        .agent("writer")
        .inbox()
        .parent()
        .unwrap()
        .join("workspace/output");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("plan.txt"), "day one").unwrap();
    publish(&s, "writer", "plan.txt", "workspace/output/plan.txt");
    society_testkit::wait_until(crate::support::SOON, "the crash after the put", || {
        s.supervisor_exited().then_some(())
    });
    assert_eq!(
        records(&s.layout().shared_log()).len(),
        1,
        "put before the crash"
    );
    s.start_supervisor();
    let done = answer(&s, "writer", "shared_put_done", "plan.txt");
    assert_eq!(done["body"]["version"], 1);
    // A later request's answer shows the new supervisor is past the first.
    std::fs::write(out.join("plan.txt"), "day two").unwrap();
    publish(&s, "writer", "plan.txt", "workspace/output/plan.txt");
    society_testkit::wait_until(crate::support::SOON, "the second answer", || {
        let n = records(&s.agent("writer").inbox())
            .into_iter()
            .filter(|r| r["type"] == "shared_put_done")
            .count();
        (n == 2).then_some(())
    });
    let versions: Vec<u64> = records(&s.layout().shared_log())
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2], "one version per request");
    let answers: Vec<_> = records(&s.agent("writer").inbox())
        .into_iter()
        .filter(|r| r["type"] == "shared_put_done")
        .map(|r| r["body"]["version"].as_u64().unwrap())
        .collect();
    assert_eq!(answers, [1, 2], "one answer per request");
}
