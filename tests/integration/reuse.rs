//! Skills vs state: `society spawn ROLE --purpose` reuses the dormant folder
//! whose experience matches (archiving its state, keeping its skills and
//! memory), `--fresh` makes a new one, concurrent spawns never claim the
//! same folder, a running folder is never picked; `society retire`;
//! `society skills copy|list`.
//!
//! Two ways to give folders experience: real work (a supervisor, messages of
//! several types) in the first test, and a *fixture* elsewhere — a folder
//! made by a plain `spawn --no-start` (its inbox empty and consumed, so
//! dormant) whose `metadata.json` is written by hand with the purposes and
//! tags the score reads.

use crate::support::{code, json_of, SOON};
use serde_json::{json, Value};
use society_testkit::{records, wait_until, Society};
use std::path::Path;

const TOML: &str = r#"
[defaults]
idle_exit = "300ms"
heartbeat = "100ms"
backoff_initial = "50ms"

[roles.writer.brain]
kind = "echo"
"#;

fn read(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn meta(s: &Society, id: &str) -> Value {
    read(&s.agent(id).dir.join("metadata.json"))
}

/// A dormant `writer` folder with the experience `metadata.json` says.
fn fixture(s: &Society, id: &str, purpose: &str, tags: &[&str]) {
    s.ok(&["spawn", "writer", "--id", id, "--no-start"]);
    let m = json!({
        "agent": id, "role": "writer", "created": "2026-01-01T00:00:00.000Z",
        "current_purpose": purpose, "total_purposes_served": 1,
        "purposes": [{"n": 1, "purpose": purpose, "tags": tags, "started": "2026-01-01T00:00:00.000Z"}],
        "tags": tags,
    });
    std::fs::write(
        s.agent(id).dir.join("metadata.json"),
        serde_json::to_vec_pretty(&m).unwrap(),
    )
    .unwrap();
}

/// `spawn writer --purpose "legal review" --tag legal --no-start -o json`.
fn spawn_legal(s: &Society) -> Value {
    json_of(
        s,
        &[
            "spawn",
            "writer",
            "--purpose",
            "legal review",
            "--tag",
            "legal",
            "--no-start",
            "-o",
            "json",
        ],
    )
}

fn send_n(s: &Society, to: &str, kind: &str, n: usize) {
    for i in 0..n {
        s.ok(&["send", to, "--type", kind, &format!("item {i}")]);
    }
}

/// Dormant, with the counts of `successful` messages in its metadata.
fn wait_dormant_with(s: &Society, id: &str, successful: u64) {
    wait_until(
        SOON,
        &format!("{id} dormant with {successful} handled"),
        || {
            let m: Value =
                serde_json::from_slice(&std::fs::read(s.agent(id).dir.join("metadata.json")).ok()?)
                    .ok()?;
            (m["experience"]["successful"] == successful && s.status(id)["state"] == "dormant")
                .then_some(())
        },
    );
}

#[test]
fn spawn_by_purpose_reuses_the_experienced_folder_and_keeps_its_skills() {
    let mut s = Society::new(crate::support::BIN, TOML);
    s.start_supervisor();
    for (purpose, tag) in [
        ("draft marketing copy", "marketing"),
        ("review supplier contracts", "legal"),
        ("translate the manual", "translation"),
    ] {
        s.ok(&["spawn", "writer", "--purpose", purpose, "--tag", tag]);
    }
    // Real work of different types: writer-2 is the one with contracts.
    send_n(&s, "writer-1", "copy", 2);
    send_n(&s, "writer-2", "contract_review", 4);
    s.ok(&[
        "send",
        "writer-2",
        "--type",
        "approval_response",
        "--json",
        r#"{"approved": true}"#,
    ]);
    s.ok(&[
        "send",
        "writer-2",
        "--type",
        "approval_response",
        "--json",
        r#"{"approved": false}"#,
    ]);
    send_n(&s, "writer-3", "translation", 1);
    // +1 each: the purpose message.
    wait_dormant_with(&s, "writer-1", 3);
    wait_dormant_with(&s, "writer-2", 7);
    wait_dormant_with(&s, "writer-3", 2);
    let m2 = meta(&s, "writer-2");
    assert_eq!(
        m2["experience"]["message_types"],
        json!({"contract_review": 4, "approval_response": 2})
    );
    assert_eq!(m2["experience"]["approval_responses"], 2);
    assert_eq!(m2["experience"]["approval_rate"], 0.5);
    assert!(m2["last_active"].is_string());

    // What it has learned, and what it was working on.
    let w2 = s.agent("writer-2").dir;
    std::fs::write(
        w2.join("skills/nda-contracts.md"),
        "check the term and the parties\n",
    )
    .unwrap();
    let memory = "{\"text\":\"supplier X signs late\",\"tags\":[\"legal\"]}\n";
    std::fs::write(w2.join("memory.jsonl"), memory).unwrap();
    std::fs::write(w2.join("memory.idx"), "derived").unwrap();
    std::fs::write(w2.join("workspace/output/draft.txt"), "old draft").unwrap();
    std::fs::create_dir_all(w2.join("conversations")).unwrap();
    std::fs::write(w2.join("conversations/c1.jsonl"), "{}\n").unwrap();

    let out = json_of(
        &s,
        &[
            "spawn",
            "writer",
            "--purpose",
            "review the NDA contracts",
            "--tag",
            "legal",
            "-o",
            "json",
        ],
    );
    assert_eq!(out["id"], "writer-2", "{out:#}");
    assert_eq!(out["reused"], true);
    assert_eq!(out["previous_purpose"], "review supplier contracts");
    let cands = out["candidates"].as_array().unwrap();
    assert_eq!(cands.len(), 3);
    assert_eq!(cands[0]["agent"], "writer-2");
    let best = &cands[0]["score"];
    assert_eq!(best["domain"]["matched"], json!(["legal"]));
    assert_eq!(best["skill"]["matched"], json!(["contracts", "nda"]));
    assert_eq!(
        best["technology"]["matched"],
        json!(["contracts", "review"])
    );
    assert_eq!(best["domain"]["points"], 10.0);
    // The other two match nothing of the purpose: not reusable for it.
    for c in &cands[1..] {
        assert_eq!(c["score"]["relevant"], false, "{c:#}");
    }

    // The state is archived, the skills and memory are where they were.
    let archive = w2.join(out["archive"].as_str().unwrap());
    assert!(
        archive.starts_with(w2.join("archive")),
        "{}",
        archive.display()
    );
    assert_eq!(
        std::fs::read_to_string(archive.join("workspace/output/draft.txt")).unwrap(),
        "old draft"
    );
    assert!(archive.join("conversations/c1.jsonl").is_file());
    assert!(!w2.join("conversations").exists());
    assert!(w2.join("workspace/output").is_dir());
    assert!(!w2.join("workspace/output/draft.txt").exists());
    assert_eq!(
        std::fs::read_to_string(w2.join("memory.jsonl")).unwrap(),
        memory
    );
    assert!(w2.join("memory.idx").is_file());
    assert!(w2.join("skills/nda-contracts.md").is_file());
    let m2 = meta(&s, "writer-2");
    assert_eq!(m2["current_purpose"], "review the NDA contracts");
    assert_eq!(m2["total_purposes_served"], 2);
    assert!(m2["state_reset_at"].is_string());
    assert_eq!(m2["purposes"][0]["archive"], out["archive"]);
    assert_eq!(
        m2["experience"]["message_types"]["contract_review"], 4,
        "experience kept"
    );
    let t = records(&s.agent("writer-2").activity())
        .into_iter()
        .find(|r| r["event"] == "purpose_transition")
        .expect("a purpose_transition record");
    assert_eq!(t["previous"], "review supplier contracts");
    assert_eq!(t["new"], "review the NDA contracts");
    let kept = t["skills_preserved"].as_array().unwrap();
    for k in [
        "skills",
        "memory.jsonl",
        "memory.idx",
        "config.json",
        "metadata.json",
    ] {
        assert!(kept.contains(&json!(k)), "{k} not in {kept:?}");
    }
    let reset = t["state_reset"].as_array().unwrap();
    for k in ["workspace", "conversations", "cases"] {
        assert!(reset.contains(&json!(k)), "{k} not in {reset:?}");
    }
    let d = json_of(&s, &["describe", "writer-2", "-o", "json"]);
    assert_eq!(d["metadata"]["current_purpose"], "review the NDA contracts");
    let text = s.ok(&["describe", "writer-2"]);
    assert!(
        text.contains("review the NDA contracts (2 served)"),
        "{text}"
    );
    assert!(text.contains("approval rate 50%; tags legal"), "{text}");
    // The agent takes up its new purpose (consumes the claim) and goes idle.
    wait_dormant_with(&s, "writer-2", 8);
    // The claim is the runtime's: the (echo) brain never saw it.
    let answers = records(&s.layout().orchestrator_inbox());
    assert!(
        !answers.iter().any(|r| r["body"]["purpose"].is_string()),
        "a brain answered a purpose message: {answers:#?}"
    );
    assert!(
        answers.iter().any(|r| r["from"] == "writer-2"),
        "echoes of the work arrived"
    );

    // --fresh: a new folder, though writer-2 matches.
    let fresh = json_of(
        &s,
        &[
            "spawn",
            "writer",
            "--purpose",
            "review the NDA contracts",
            "--tag",
            "legal",
            "--fresh",
            "-o",
            "json",
        ],
    );
    assert_eq!(fresh["id"], "writer-4");
    assert_eq!(fresh["reused"], false);
    assert_eq!(
        meta(&s, "writer-4")["current_purpose"],
        "review the NDA contracts"
    );
    // A purpose no folder has worked on: a new folder too.
    let other = s.ok(&[
        "spawn",
        "writer",
        "--purpose",
        "plan the wedding",
        "--tag",
        "events",
    ]);
    assert_eq!(other, "writer-5");
}

#[test]
fn explain_prints_every_candidate_term_by_term() {
    let s = Society::new(crate::support::BIN, TOML);
    fixture(&s, "writer-a", "legal review of contracts", &["legal"]);
    fixture(&s, "writer-b", "poetry", &["arts"]);
    std::fs::write(s.agent("writer-b").dir.join("skills/contracts.md"), "x").unwrap();
    let (c, out, err) = code(
        &s,
        &[
            "spawn",
            "writer",
            "--purpose",
            "contracts",
            "--tag",
            "legal",
            "--explain",
            "--no-start",
        ],
    );
    assert_eq!(c, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    for h in [
        "AGENT",
        "DORMANT",
        "DOMAIN",
        "SKILL",
        "TECH",
        "SUCCESS",
        "RECENCY",
        "EXPERIENCE",
        "TOTAL",
        "MATCHED",
    ] {
        assert!(lines[0].contains(h), "{h}: {out}");
    }
    // writer-a: domain legal (10) + tech contracts (3) beats writer-b: skill contracts (5).
    assert!(
        lines[1].starts_with("writer-a") && lines[1].contains("10.0"),
        "{out}"
    );
    assert!(lines[1].contains("domain: legal; tech: contracts"), "{out}");
    assert!(
        lines[2].starts_with("writer-b") && lines[2].contains("skill: contracts"),
        "{out}"
    );
    assert_eq!(
        *lines.last().unwrap(),
        "writer-a",
        "the id comes last: {out}"
    );
    assert!(err.contains("reused writer-a"), "{err}");

    // Bad input: said clearly, nothing spawned.
    for (args, says) in [
        (vec!["--purpose", "  "], "--purpose is empty"),
        (vec!["--tag", "legal"], "--purpose"),
        (vec!["--fresh"], "--purpose"),
        (vec!["--purpose", "x", "--id", "w"], "cannot be used with"),
        (vec!["--purpose", "x", "--tag", "Bad Tag!"], "invalid tag"),
    ] {
        let mut full = vec!["spawn", "writer", "--no-start"];
        full.extend(args.iter().copied());
        let (c, _, err) = code(&s, &full);
        assert_eq!(c, 2, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert!(!s.agent("writer-1").dir.exists() && !s.agent("w").dir.exists());
}

#[test]
fn concurrent_spawns_never_claim_the_same_folder() {
    let s = Society::new(crate::support::BIN, TOML);
    fixture(&s, "writer-1", "legal review", &["legal"]);
    fixture(&s, "writer-2", "legal review", &["legal"]);
    // Every spawn chooses (both folders dormant, writer-1 first: a tie goes
    // by id) and only then tries to claim: they all go for writer-1.
    let children: Vec<_> = (0..4)
        .map(|_| {
            s.command(&[
                "spawn",
                "writer",
                "--purpose",
                "legal review",
                "--tag",
                "legal",
                "--no-start",
                "-o",
                "json",
            ])
            .env("SOCIETY_FAULTS", "reuse_before_claim")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let outs: Vec<Value> = children
        .into_iter()
        .map(|c| {
            let o = c.wait_with_output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            serde_json::from_slice(&o.stdout).unwrap()
        })
        .collect();
    let mut ids: Vec<String> = outs
        .iter()
        .map(|o| o["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(ids, unique, "two spawns got the same folder: {outs:#?}");
    let reused: Vec<&str> = outs
        .iter()
        .filter(|o| o["reused"] == true)
        .map(|o| o["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        reused.len(),
        2,
        "both dormant folders reused, once each: {outs:#?}"
    );
    // Each folder was claimed once: one transition, one purpose message.
    for id in ["writer-1", "writer-2"] {
        let transitions = records(&s.agent(id).activity())
            .into_iter()
            .filter(|r| r["event"] == "purpose_transition")
            .count();
        let claims = records(&s.agent(id).inbox())
            .into_iter()
            .filter(|r| r["type"] == "purpose")
            .count();
        assert_eq!(transitions, claims, "{id}");
        assert!(claims <= 1, "{id} claimed {claims} times");
        assert_eq!(reused.contains(&id), claims == 1, "{id}");
    }
}

#[test]
fn a_folder_whose_lock_is_held_is_never_picked() {
    let s = Society::new(crate::support::BIN, TOML);
    fixture(
        &s,
        "writer-1",
        "legal review of contracts",
        &["legal", "contracts"],
    );
    fixture(&s, "writer-2", "legal review", &["legal"]);
    // writer-1 is the better match, but "running": we hold its lock.
    let held = society_core::lock::HeldLock::try_acquire(&s.agent("writer-1").lock()).unwrap();
    let out = json_of(
        &s,
        &[
            "spawn",
            "writer",
            "--purpose",
            "contracts",
            "--tag",
            "legal",
            "--tag",
            "contracts",
            "--no-start",
            "-o",
            "json",
        ],
    );
    assert_eq!(out["id"], "writer-2", "{out:#}");
    let w1 = out["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["agent"] == "writer-1")
        .unwrap();
    assert!(
        w1["not_dormant"].as_str().unwrap().contains("running"),
        "{w1:#}"
    );
    // writer-2 is claimed now; writer-1 still held: a new folder.
    let out = json_of(
        &s,
        &[
            "spawn",
            "writer",
            "--purpose",
            "contracts",
            "--tag",
            "legal",
            "--no-start",
            "-o",
            "json",
        ],
    );
    assert_eq!(out["id"], "writer-3", "{out:#}");
    assert!(
        !s.agent("writer-1").dir.join("archive").exists(),
        "nothing touched writer-1"
    );
    drop(held);
}

#[test]
fn retire_archives_the_folder_and_it_is_never_reused() {
    let mut s = Society::new(crate::support::BIN, TOML);
    fixture(&s, "writer-1", "legal review", &["legal"]);
    fixture(&s, "writer-2", "legal review", &["legal"]);
    // Without a supervisor the folder stays, retired: never picked.
    s.ok(&[
        "retire",
        "writer-1",
        "--reason",
        "project over",
        "--no-start",
    ]);
    assert_eq!(meta(&s, "writer-1")["retired"]["reason"], "project over");
    let out = spawn_legal(&s);
    assert_eq!(out["id"], "writer-2", "{out:#}");
    let w1 = &out["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["agent"] == "writer-1")
        .unwrap()["not_dormant"];
    assert!(w1.as_str().unwrap().starts_with("retired"), "{w1}");

    // The supervisor, once started, carries the request out: the folder
    // moves whole into archive/.
    s.start_supervisor();
    let moved = wait_until(SOON, "writer-1 archived", || {
        std::fs::read_dir(s.layout().archive_dir())
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("agent-writer-1-")
            })
    });
    assert_eq!(
        read(&moved.join("metadata.json"))["retired"]["reason"],
        "project over"
    );
    assert!(!s.agent("writer-1").dir.exists());
    s.wait_state("writer-2", "dormant", SOON);
    let r = json_of(&s, &["retire", "writer-2", "-o", "json"]);
    let to = Path::new(r["archive"].as_str().unwrap());
    assert!(
        read(&to.join("metadata.json"))["retired"]["at"].is_string(),
        "{r:#}"
    );
    assert!(!s.agent("writer-2").dir.exists());
    let reg = records(&s.layout().registry());
    for id in ["writer-1", "writer-2"] {
        assert!(
            reg.iter()
                .any(|r| r["event"] == "retired" && r["agent"] == id),
            "{id}"
        );
    }

    // A running agent is refused without --force; an unknown one is not found.
    s.ok(&["spawn", "writer", "--id", "busy", "--keep-alive", "--wait"]);
    let (c, _, err) = code(&s, &["retire", "busy"]);
    assert_eq!(c, 10, "{err}");
    assert!(err.contains("agent busy is running"), "{err}");
    let (c, _, err) = code(&s, &["retire", "ghost"]);
    assert_eq!(c, 4, "{err}");
    s.ok(&["retire", "busy", "--force"]);
    assert!(!s.agent("busy").dir.exists());
}

#[test]
fn skills_are_copied_between_agents_and_bad_names_refused() {
    let s = Society::new(crate::support::BIN, TOML);
    fixture(&s, "writer-1", "legal", &["legal"]);
    fixture(&s, "writer-2", "legal", &["legal"]);
    let src = s.agent("writer-1").dir.join("skills");
    std::fs::write(src.join("tone.md"), "be brief").unwrap();
    std::fs::create_dir_all(src.join("prompts")).unwrap();
    std::fs::write(src.join("prompts/review.md"), "review like this").unwrap();

    let one = json_of(
        &s,
        &[
            "skills", "copy", "writer-1", "writer-2", "tone.md", "-o", "json",
        ],
    );
    assert_eq!(one["copied"], json!(["tone.md"]));
    let dst = s.agent("writer-2").dir.join("skills");
    assert_eq!(
        std::fs::read_to_string(dst.join("tone.md")).unwrap(),
        "be brief"
    );
    assert!(!dst.join("prompts").exists());
    let all = json_of(
        &s,
        &["skills", "copy", "writer-1", "writer-2", "-o", "json"],
    );
    assert_eq!(all["copied"], json!(["prompts/review.md"]));
    assert_eq!(all["unchanged"], json!(["tone.md"]));
    let list = json_of(&s, &["skills", "list", "writer-2", "-o", "json"]);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["prompts", "tone.md"]);

    // A different skill of the same name is not overwritten without --force.
    std::fs::write(dst.join("tone.md"), "be thorough").unwrap();
    let (c, _, err) = code(&s, &["skills", "copy", "writer-1", "writer-2", "tone.md"]);
    assert_eq!(c, 10, "{err}");
    assert!(
        err.contains("already has a different skills/tone.md"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dst.join("tone.md")).unwrap(),
        "be thorough"
    );
    s.ok(&[
        "skills", "copy", "writer-1", "writer-2", "tone.md", "--force",
    ]);
    assert_eq!(
        std::fs::read_to_string(dst.join("tone.md")).unwrap(),
        "be brief"
    );

    for (args, want, says) in [
        (vec!["ghost", "writer-2"], 4, "no agent ghost"),
        (vec!["writer-1", "ghost"], 4, "no agent ghost"),
        (
            vec!["writer-1", "writer-2", "style.md"],
            4,
            "has no skill \"style.md\"; it has prompts, tone.md",
        ),
        (
            vec!["writer-1", "writer-2", "../config.json"],
            5,
            "relative path inside skills/",
        ),
        (
            vec!["writer-1", "writer-2", "/etc/passwd"],
            5,
            "relative path inside skills/",
        ),
        (
            vec!["writer-1", "writer-1"],
            5,
            "both the source and the target",
        ),
    ] {
        let mut full = vec!["skills", "copy"];
        full.extend(args.iter().copied());
        let (c, _, err) = code(&s, &full);
        assert_eq!(c, want, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // A link out of the folder is refused, not followed.
    std::os::unix::fs::symlink("/etc", src.join("etc")).unwrap();
    let (c, _, err) = code(&s, &["skills", "copy", "writer-1", "writer-2", "etc"]);
    assert_eq!(c, 5, "{err}");
    assert!(err.contains("symbolic link"), "{err}");
    assert!(!dst.join("etc").exists());
    // Nor through a linked directory on the way to a named file…
    let (c, _, err) = code(
        &s,
        &["skills", "copy", "writer-1", "writer-2", "etc/hostname"],
    );
    assert_eq!(c, 5, "{err}");
    assert!(err.contains("symbolic link"), "{err}");
    // …nor into a target whose skills/ leads out.
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::remove_dir_all(&dst).unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), &dst).unwrap();
    std::fs::remove_file(src.join("etc")).unwrap();
    let (c, _, err) = code(&s, &["skills", "copy", "writer-1", "writer-2"]);
    assert_eq!(c, 5, "{err}");
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
}

#[test]
fn a_spawn_killed_mid_reset_loses_nothing_and_the_next_one_finishes() {
    let s = Society::new(crate::support::BIN, TOML);
    fixture(&s, "writer-1", "legal review", &["legal"]);
    let w1 = s.agent("writer-1").dir;
    std::fs::write(w1.join("workspace/output/a.txt"), "first").unwrap();
    std::fs::write(w1.join("skills/legal.md"), "kept").unwrap();
    // Aborted (as by SIGKILL) once the state is moved, before the metadata,
    // the activity record and the claim.
    let out = s
        .command(&[
            "spawn",
            "writer",
            "--purpose",
            "legal review",
            "--tag",
            "legal",
            "--no-start",
        ])
        .env("SOCIETY_FAULTS", "reuse_after_archive")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(crate::support::lock_free(&s.agent("writer-1").lock()));
    let first = std::fs::read_dir(w1.join("archive"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect::<Vec<_>>();
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(
        std::fs::read_to_string(first[0].join("workspace/output/a.txt")).unwrap(),
        "first"
    );
    assert_eq!(
        meta(&s, "writer-1")["total_purposes_served"],
        1,
        "no metadata written"
    );
    // Not claimed, so still dormant: the next spawn reuses it into a new archive folder.
    std::fs::write(w1.join("workspace/output/b.txt"), "second").unwrap();
    let out = spawn_legal(&s);
    assert_eq!(out["id"], "writer-1", "{out:#}");
    let second = w1.join(out["archive"].as_str().unwrap());
    assert_ne!(second, first[0]);
    assert_eq!(
        std::fs::read_to_string(second.join("workspace/output/b.txt")).unwrap(),
        "second"
    );
    assert_eq!(
        std::fs::read_to_string(first[0].join("workspace/output/a.txt")).unwrap(),
        "first"
    );
    assert_eq!(
        std::fs::read_to_string(w1.join("skills/legal.md")).unwrap(),
        "kept"
    );
    let m = meta(&s, "writer-1");
    assert_eq!(m["total_purposes_served"], 2);
    let transitions = records(&s.agent("writer-1").activity())
        .into_iter()
        .filter(|r| r["event"] == "purpose_transition")
        .count();
    assert_eq!(transitions, 1);
}

#[test]
fn a_folder_that_owns_an_open_case_is_not_dormant() {
    let mut s = Society::new(crate::support::BIN, TOML);
    fixture(&s, "writer-1", "legal review", &["legal"]);
    fixture(&s, "writer-2", "legal review", &["legal"]);
    s.start_supervisor();
    let case = s.ok(&[
        "case",
        "new",
        "the supplier contract",
        "--assign",
        "writer-1",
    ]);
    // The fixtures' own spawns asked for a start: let them go idle and exit.
    for id in ["writer-1", "writer-2"] {
        s.wait_state(id, "dormant", SOON);
    }
    let spawn = |s: &Society| {
        json_of(
            s,
            &[
                "spawn",
                "writer",
                "--purpose",
                "legal review",
                "--tag",
                "legal",
                "-o",
                "json",
            ],
        )
    };
    let out = spawn(&s);
    assert_eq!(out["id"], "writer-2", "{out:#}");
    let w1 = out["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["agent"] == "writer-1")
        .unwrap()
        .clone();
    assert_eq!(
        w1["not_dormant"],
        format!("owns open case {case}"),
        "{w1:#}"
    );
    // Closed, the case no longer holds it.
    s.ok(&["case", "close", &case]);
    let out = spawn(&s);
    assert_eq!(out["id"], "writer-1", "{out:#}");
}

#[test]
fn a_folder_awaiting_an_approval_is_not_dormant() {
    let s = Society::new(crate::support::BIN, TOML);
    fixture(&s, "writer-1", "legal review", &["legal"]);
    // writer-1 asked the orchestrator for approval; no answer yet.
    let req = society_core::Envelope::new(
        society_core::Party::Agent(society_core::AgentId::new("writer-1").unwrap()),
        society_core::Party::Orchestrator,
        "approval_request",
        json!({"plan": "sign the contract"}),
    );
    society_core::jsonl::append_one(
        &s.layout().orchestrator_inbox(),
        &req.to_line(),
        society_core::jsonl::Durability::Flushed,
        usize::MAX,
    )
    .unwrap();
    let out = spawn_legal(&s);
    assert_eq!(out["id"], "writer-2", "{out:#}");
    assert_eq!(
        out["candidates"][0]["not_dormant"],
        format!("awaits the answer to approval request {}", req.id)
    );
}

/// Two spawns for the same purpose one after the other: the first folder
/// consumes its claim and goes idle (dormant as far as its files go), but its
/// purpose has had no work yet, so the second spawn must not take it.
#[test]
fn a_folder_just_claimed_is_not_taken_by_the_next_spawn_before_it_has_worked() {
    let mut s = Society::new(crate::support::BIN, TOML);
    s.start_supervisor();
    let spawn = |s: &Society| {
        s.ok(&[
            "spawn",
            "writer",
            "--purpose",
            "review contracts",
            "--tag",
            "legal",
        ])
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string()
    };
    let first = spawn(&s);
    // Its claim consumed, its process gone: only the claim keeps it.
    wait_until(SOON, "the first folder idle and unlocked", || {
        let handled =
            crate::support::agent_state(&s.agent(&first)).unwrap_or_default()["handled"] == 1;
        (handled && crate::support::lock_free(&s.agent(&first).lock())).then_some(())
    });
    let second = spawn(&s);
    assert_ne!(
        second, first,
        "the second spawn took the first one's folder"
    );
    let out = s.ok(&[
        "spawn",
        "writer",
        "--purpose",
        "review contracts",
        "--tag",
        "legal",
        "--explain",
        "--fresh",
    ]);
    assert!(out.contains("given no work since"), "{out}");
    // Once it has worked and is idle again, it is reusable.
    s.ok(&["send", &first, "--type", "contract_review", "nda"]);
    wait_until(SOON, "the first folder worked and idle", || {
        let handled =
            crate::support::agent_state(&s.agent(&first)).unwrap_or_default()["handled"] == 2;
        (handled && crate::support::lock_free(&s.agent(&first).lock())).then_some(())
    });
    let out = s.ok(&[
        "spawn",
        "writer",
        "--purpose",
        "review contracts",
        "--tag",
        "legal",
        "--explain",
    ]);
    assert_eq!(out.lines().last().unwrap().trim(), first, "{out}");
}
