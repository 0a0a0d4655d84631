//! Federation over a real NATS JetStream server (`nats-server` from PyPI,
//! on loopback): societies in temp dirs address each other as
//! `agent@society`, and everything crosses through the supervisors' bridges
//! while the server restarts, freezes, and a supervisor is SIGKILLed.

mod nats;

use crate::support::{code, json_of, paste, readme_block, SmallDisk, BIN, SOON};
use nats::Nats;
use serde_json::{json, Value};
use society_core::jsonl::{Appender, Durability};
use society_core::{AgentId, Envelope, Party};
use society_testkit::{records, wait_until, Society};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

fn federated(name: &str, url: &str, agents: &str) -> String {
    format!(
        "[society]\nname = \"{name}\"\n\n[federation]\nnats_url = \"{url}\"\n\n[defaults]\nheartbeat = \"200ms\"\n{agents}"
    )
}

/// The ids and bodies of the messages of `kind` in a JSONL file.
fn messages(path: &Path, kind: &str) -> Vec<Value> {
    records(path)
        .into_iter()
        .filter(|r| r["type"] == kind)
        .collect()
}

#[test]
fn a_message_crosses_to_another_society_and_its_reply_comes_back() {
    let server = Nats::start();
    let url = server.url();
    let north = Society::new(
        BIN,
        &federated(
            "north",
            &url,
            "[[agent]]\nid = \"echo\"\nrole = \"echo\"\nbrain = \"echo\"\nkeep_alive = true\n",
        ),
    );
    let mut south = Society::new(BIN, &federated("south", &url, ""));
    let mut north = north;
    north.start_supervisor();
    south.start_supervisor();

    // An agent id and a role, both in north, from south's orchestrator.
    let to_agent = south.ok(&["send", "echo@north", "hello across"]);
    let to_role = south.ok(&["send", "role:echo@north", "--json", r#"{"n":2}"#]);
    let inbox = south.layout().orchestrator_inbox();
    let replies = wait_until(SOON, "both replies in south's orchestrator inbox", || {
        let r = messages(&inbox, "reply");
        (r.len() >= 2).then_some(r)
    });
    let answered: Vec<&str> = replies
        .iter()
        .filter_map(|r| r["reply_to"].as_str())
        .collect();
    assert!(answered.contains(&to_agent.trim()), "{replies:?}");
    assert!(answered.contains(&to_role.trim()), "{replies:?}");
    for r in &replies {
        assert_eq!(
            r["from"], "echo@north",
            "a reply names the society it came from: {r}"
        );
        assert_eq!(r["to"], "orchestrator", "{r}");
    }
    // What left south is in its outbound log, sender named as south's.
    let out = records(&south.layout().federation_outbound());
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(
        out.iter().all(|r| r["from"] == "orchestrator@south"),
        "{out:?}"
    );
    // North's echo agent got them with south's name on the sender.
    let got = records(&north.agent("echo").inbox());
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got
        .iter()
        .all(|r| r["from"] == "orchestrator@south" && r["to"] != "echo@north"));

    // The link as `society federation status --json` shows it.
    let status = wait_until(SOON, "south's link connected, nothing waiting", || {
        let v = json_of(&south, &["federation", "status", "--json"]);
        (v["connected"] == true && v["pending"] == 0 && v["received"] == 2).then_some(v)
    });
    assert_eq!(status["society"], "south", "{status}");
    assert_eq!(status["published"], 2, "{status}");
    assert_eq!(status["servers"], json!([url]), "{status}");
    let table = south.ok(&["status"]);
    assert!(
        table.contains(&format!("federation south → {url}  connected, 0 waiting")),
        "{table}"
    );
    for s in [&south, &north] {
        let (c, out, err) = code(s, &["fsck"]);
        assert_eq!(c, 0, "fsck: {out}{err}");
    }

    // A society without [federation] refuses, naming what to add.
    let lone = Society::new(BIN, crate::support::ECHO_TOML);
    let (c, _, err) = code(&lone, &["send", "echo@north", "hi"]);
    assert_eq!(c, 5, "invalid input: {err}");
    assert!(
        err.contains("not federated") && err.contains("[federation]"),
        "{err}"
    );
    assert!(
        !lone.layout().supervisor_inbox().exists()
            || records(&lone.layout().supervisor_inbox()).is_empty()
    );

    // A message to an agent north does not have: dead-lettered there, and
    // the sender hears why.
    south.ok(&["send", "nobody@north", "lost?"]);
    let blocked = wait_until(SOON, "the notice that nobody@north does not exist", || {
        messages(&inbox, "message_blocked").into_iter().next()
    });
    assert_eq!(blocked["from"], "supervisor@north", "{blocked}");
    let reason = blocked["body"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("no agent nobody"), "{blocked}");
    let dead = records(&north.layout().supervisor_deadletter());
    assert!(dead.iter().any(|d| d["to"] == "nobody"), "{dead:?}");
}

/// A pipeline across two societies: south's `stage1` forwards each task to
/// `stage2@north`, which forwards it to `stage3@south`, which hands the
/// result to south's orchestrator. 10,000 tasks; meanwhile the NATS server
/// is restarted twice, south's supervisor (which both publishes and
/// consumes) is SIGKILLed three times, and the server is frozen for 10 s.
/// Every task's result reaches the orchestrator exactly once, and no stage
/// gets any task twice.
#[test]
fn ten_thousand_messages_cross_twice_through_restarts_kills_and_a_partition() {
    const N: u64 = 10_000;
    let mut server = Nats::start();
    let url = server.url();
    let forward = |to: &str, stage: u32| {
        format!(
            "[[agent]]\nid = \"stage{stage}\"\nkeep_alive = true\n[agent.policy]\nmax_record = 4096\n[agent.brain]\nkind = \"script\"\n[[agent.brain.rules]]\nactions = [{{ do = \"forward\", to = \"{to}\", type = \"task\", set = {{ stage = {next} }} }}]\n",
            next = stage + 1
        )
    };
    let result = "[[agent]]\nid = \"stage3\"\nkeep_alive = true\n[agent.brain]\nkind = \"script\"\n[[agent.brain.rules]]\nactions = [{ do = \"forward\", to = \"orchestrator\", type = \"result\" }]\n";
    let mut south = Society::new(
        BIN,
        &federated(
            "south",
            &url,
            &format!("{}{result}", forward("stage2@north", 1)),
        ),
    );
    let mut north = Society::new(BIN, &federated("north", &url, &forward("stage3@south", 2)));

    north.start_supervisor();
    south.start_supervisor();
    // The tasks, written into stage1's inbox as `society send` would, a
    // thousand ahead of the results: the stream of work never dries up
    // before the last fault.
    let mut inbox = Appender::open(
        &south.agent("stage1").inbox(),
        Durability::Durable,
        usize::MAX,
    )
    .expect("stage1's inbox");
    let fed = std::cell::Cell::new(0u64);
    let feed = |upto: u64| {
        let upto = upto.min(N);
        let lines: Vec<Vec<u8>> = (fed.get()..upto)
            .map(|n| {
                let to = Party::Agent(AgentId::new("stage1").expect("id"));
                Envelope::new(Party::Orchestrator, to, "task", json!({"n": n})).to_line()
            })
            .collect();
        if !lines.is_empty() {
            inbox.append_batch(&lines).expect("tasks");
            fed.set(upto);
        }
    };
    let feed = std::cell::RefCell::new(feed);
    feed.borrow_mut()(1_000);

    let results = south.layout().orchestrator_inbox();
    let count = || {
        records(&results)
            .iter()
            .filter(|r| r["type"] == "result")
            .count() as u64
    };
    let reach = |n: u64, what: &str| {
        wait_until(Duration::from_secs(240), what, || {
            let done = count();
            feed.borrow_mut()(done + 1_000);
            (done >= n).then_some(())
        });
    };
    let mut faults = Vec::new();
    let started = Instant::now();
    reach(800, "800 results before the first server restart");
    server.restart();
    faults.push(format!(
        "{:?} server restarted at {}",
        started.elapsed(),
        count()
    ));
    reach(2_000, "2,000 results before the first SIGKILL");
    south.kill_supervisor();
    south.start_supervisor();
    faults.push(format!(
        "{:?} south SIGKILLed at {}",
        started.elapsed(),
        count()
    ));
    reach(3_500, "3,500 results before the partition");
    server.pause();
    let frozen = count();
    // Work arrives while the server is frozen.
    feed.borrow_mut()(fed.get() + 500);
    // The partition lasts 10 s: its length is the fault, not a wait.
    std::thread::sleep(Duration::from_secs(10));
    // stage1 went on forwarding: what it sent waits in south's outbound log.
    let waiting = json_of(&south, &["federation", "status", "--json"]);
    server.resume();
    faults.push(format!(
        "{:?} partition of 10 s from {frozen}: {}",
        started.elapsed(),
        waiting
    ));
    assert!(
        waiting["pending"].as_u64().unwrap_or(0) > 0,
        "nothing waited in outbound.jsonl while the server was frozen: {waiting}"
    );
    reach(5_000, "5,000 results before the second SIGKILL");
    south.kill_supervisor();
    south.start_supervisor();
    faults.push(format!(
        "{:?} south SIGKILLed at {}",
        started.elapsed(),
        count()
    ));
    reach(6_500, "6,500 results before the second server restart");
    server.restart();
    faults.push(format!(
        "{:?} server restarted at {}",
        started.elapsed(),
        count()
    ));
    reach(8_000, "8,000 results before the third SIGKILL");
    south.kill_supervisor();
    south.start_supervisor();
    faults.push(format!(
        "{:?} south SIGKILLed at {}",
        started.elapsed(),
        count()
    ));
    reach(N, "every result");
    eprintln!("faults: {faults:#?}; all {N} in {:?}", started.elapsed());

    // Exactly once, end to end and at every stage.
    let once = |path: &Path, kind: &str, what: &str| {
        let mut seen: BTreeMap<u64, u32> = BTreeMap::new();
        for r in messages(path, kind) {
            *seen.entry(r["body"]["n"].as_u64().expect("n")).or_default() += 1;
        }
        let missing: Vec<u64> = (0..N).filter(|n| !seen.contains_key(n)).take(10).collect();
        let twice: Vec<(&u64, &u32)> = seen.iter().filter(|(_, c)| **c > 1).take(10).collect();
        assert!(
            missing.is_empty(),
            "{what}: tasks never arrived: {missing:?}…"
        );
        assert!(
            twice.is_empty(),
            "{what}: tasks arrived more than once: {twice:?}…"
        );
        assert_eq!(seen.len() as u64, N, "{what}");
    };
    once(&north.agent("stage2").inbox(), "task", "north's stage2");
    // In order per sender: stage1 took the tasks in order, and north's
    // stage2 got them in that order, through every fault; so did south's
    // stage3 from stage2.
    for (who, inbox) in [
        ("north's stage2", north.agent("stage2").inbox()),
        ("south's stage3", south.agent("stage3").inbox()),
    ] {
        let order: Vec<u64> = messages(&inbox, "task")
            .iter()
            .filter_map(|r| r["body"]["n"].as_u64())
            .collect();
        if let Some(w) = order.windows(2).find(|w| w[1] < w[0]) {
            panic!("{who} got task {} after task {}: out of order", w[1], w[0]);
        }
    }
    once(&south.agent("stage3").inbox(), "task", "south's stage3");
    once(&results, "result", "south's orchestrator");
    // Both links settle with nothing waiting.
    for s in [&south, &north] {
        wait_until(SOON, "the outbound log fully acknowledged", || {
            let v = json_of(s, &["federation", "status", "--json"]);
            (v["pending"] == 0 && v["connected"] == true).then_some(())
        });
    }
    let (c, out, err) = code(&south, &["fsck"]);
    assert_eq!(c, 0, "fsck after the run: {out}{err}");
    south.stop_supervisor();
    north.stop_supervisor();
}

/// `fsck` checks the outbound log: its cursor fits, and every line leaves
/// this society from it.
#[test]
fn fsck_checks_the_outbound_log_and_its_cursor() {
    let s = Society::new(BIN, &federated("south", "nats://127.0.0.1:9", ""));
    let layout = s.layout();
    let line = |from: &str, to: &str| {
        let env = Envelope::new(
            from.parse().expect("from"),
            to.parse().expect("to"),
            "task",
            json!({}),
        );
        let mut l = env.to_line();
        l.push(b'\n');
        l
    };
    let mut bytes = line("orchestrator@south", "echo@north");
    let good = bytes.len();
    bytes.extend(line("orchestrator@south", "echo"));
    bytes.extend(line("orchestrator@west", "echo@north"));
    std::fs::write(layout.federation_outbound(), &bytes).expect("outbound");
    std::fs::write(
        layout.federation_state(),
        json!({"society": "south", "servers": [], "pid": 1, "connected": false, "since": null,
               "cursor": good + 3, "published": 0, "received": 0, "duplicates": 0,
               "refused": 0, "last_error": null, "updated": "2026-01-01T00:00:00.000Z"})
        .to_string(),
    )
    .expect("state");
    let (c, out, err) = code(&s, &["fsck"]);
    assert_ne!(c, 0, "{out}{err}");
    assert!(out.contains("is not on a line boundary"), "{out}");
    assert!(out.contains("in this society"), "{out}");
    assert!(out.contains("is from orchestrator@west"), "{out}");
}

/// README.md's federation walk-through (the same block as SCALING.md's),
/// pasted line by line: two societies on one machine and a NATS server,
/// a message from south to `echo@north` and its reply. `pip install` is
/// not run (`scripts/install-nats.sh` found the server), and the server
/// gets a free port instead of 4222.
#[test]
fn the_federation_walkthrough_works_pasted_line_by_line() {
    let lines = readme_block("## Federation");
    let scaling = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("SCALING.md"))
        .expect("SCALING.md");
    assert!(
        scaling.contains(&lines.join("\n")),
        "SCALING.md's walk-through differs from README.md's"
    );
    let scratch = tempfile::tempdir().expect("scratch");
    let fed = scratch.path().join("fed");
    let port = nats::free_port().to_string();
    let server_dir = nats::server().parent().expect("the server's directory");
    let mut pasted = vec![format!("export PATH=\"{}:$PATH\"", server_dir.display())];
    pasted.extend(
        lines
            .iter()
            .filter(|l| !l.starts_with("pip install"))
            .map(|l| l.replace("4222", &port)),
    );
    let out = paste(&pasted, "/tmp/fed", &fed, scratch.path());
    let err = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for s in ["north", "south"] {
        let _ = std::process::Command::new(BIN)
            .args(["--root", &fed.join(s).display().to_string(), "down"])
            .output();
    }
    assert!(
        out.status.success(),
        "a line failed:\n{err}\nstdout:\n{stdout}"
    );
    let reply = stdout
        .lines()
        .find(|l| l.contains("echo@north"))
        .unwrap_or_else(|| panic!("no reply from echo@north:\n{stdout}"));
    assert!(reply.contains("hello from south"), "{reply}");
    assert!(stdout.contains("link:      connected"), "{stdout}");
    assert!(stdout.contains("federation north"), "{stdout}");
}

const ECHO: &str = "[[agent]]\nid = \"echo\"\nbrain = \"echo\"\nkeep_alive = true\n";

/// North with an echo agent and an empty south, both on `url`.
fn pair(url: &str) -> (Society, Society) {
    (
        Society::new(BIN, &federated("north", url, ECHO)),
        Society::new(BIN, &federated("south", url, "")),
    )
}

/// `n` messages from south's orchestrator to `echo@north`; their ids.
fn send_many(south: &Society, tag: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            south
                .ok(&["send", "echo@north", &format!("{tag} {i}")])
                .trim()
                .to_string()
        })
        .collect()
}

/// Every id answered in south's orchestrator inbox, once; and north's echo
/// agent got each once. (Both read with their rotated segments.)
fn answered_once(south: &Society, north: &Society, ids: &[String]) {
    let (layout, inbox) = (south.layout(), south.layout().orchestrator_inbox());
    let all = |layout: &society_core::Layout, path: &Path| {
        society_core::segments::read_objects_all(layout, path).expect("read with segments")
    };
    let replies = |id: &String| {
        all(&layout, &inbox)
            .iter()
            .filter(|r| r["reply_to"] == **id)
            .count()
    };
    wait_until(Duration::from_secs(60), "every message answered", || {
        ids.iter().all(|id| replies(id) >= 1).then_some(())
    });
    let got = all(&north.layout(), &north.agent("echo").inbox());
    for id in ids {
        assert_eq!(replies(id), 1, "{id} answered once");
        let copies = got.iter().filter(|r| r["id"] == **id).count();
        assert_eq!(copies, 1, "{id} reached north's echo agent once");
    }
}

fn link(s: &Society) -> Value {
    json_of(s, &["federation", "status", "--json"])
}

/// The bridge cannot append what it received (north's supervisor inbox is a
/// directory for a few seconds): it acknowledges nothing meanwhile, then
/// appends each message once.
#[test]
fn a_received_batch_that_cannot_be_written_waits_and_lands_once() {
    let server = Nats::start();
    let (mut north, mut south) = pair(&server.url());
    north.start_supervisor();
    south.start_supervisor();
    // Past 4 KiB of north's supervisor inbox, so that its cursor is past
    // the length a directory reports.
    let first = send_many(&south, "before", 25);
    answered_once(&south, &north, &first);
    // Swapped atomically with a directory (the file is never missing, which
    // the supervisor would take for a truncation), and back later.
    let inbox = north.layout().supervisor_inbox();
    let dir = inbox.with_extension("dir");
    std::fs::create_dir(&dir).expect("a directory");
    let swap = || {
        use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
        renameat2(
            AT_FDCWD,
            &inbox,
            AT_FDCWD,
            &dir,
            RenameFlags::RENAME_EXCHANGE,
        )
        .expect("swap the inbox and the directory");
    };
    swap();
    let ids = send_many(&south, "during", 20);
    wait_until(SOON, "north's bridge to report the failing append", || {
        let v = link(&north);
        v["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot append to the supervisor's inbox"))
            .then_some(())
    });
    // The fault lasts 3 s: its length is the fault, not a wait.
    std::thread::sleep(Duration::from_secs(3));
    swap();
    answered_once(&south, &north, &ids);
}

/// A full disk under the receiving society: messages wait in its stream,
/// and land once there is room again.
#[test]
fn a_full_disk_holds_received_messages_back_until_there_is_room() {
    let server = Nats::start();
    let (mut north, mut south) = pair(&server.url());
    let Some(disk) = SmallDisk::over(&north, "4m") else {
        return;
    };
    north.start_supervisor();
    south.start_supervisor();
    let first = send_many(&south, "before", 1);
    answered_once(&south, &north, &first);
    let filler = disk.fill();
    let ids = send_many(&south, "during", 20);
    // They left south (JetStream holds them) and cannot land in north.
    wait_until(SOON, "south's outbound log acknowledged", || {
        (link(&south)["pending"] == 0).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    let inbox = south.layout().orchestrator_inbox();
    let early: Vec<&String> = ids
        .iter()
        .filter(|id| records(&inbox).iter().any(|r| r["reply_to"] == ***id))
        .collect();
    assert!(early.len() < ids.len(), "the full disk held nothing back");
    std::fs::remove_file(filler).expect("make room");
    answered_once(&south, &north, &ids);
}

/// The bridge's state file corrupt at start (it publishes `outbound.jsonl`
/// again from its start), and `outbound.jsonl` cut while it runs: nothing is
/// delivered twice, nothing later is held back.
#[test]
fn a_corrupt_bridge_state_or_a_cut_outbound_log_doubles_nothing() {
    let server = Nats::start();
    let (mut north, mut south) = pair(&server.url());
    north.start_supervisor();
    south.start_supervisor();
    let mut ids = send_many(&south, "first", 5);
    answered_once(&south, &north, &ids);
    south.stop_supervisor();
    std::fs::write(south.layout().federation_state(), b"{\"cursor\": tr").expect("corrupt it");
    let (c, out, _) = code(&south, &["fsck"]);
    assert_ne!(c, 0, "fsck names the corrupt state: {out}");
    assert!(
        out.contains("federation.json") || out.contains("federation state"),
        "{out}"
    );
    south.start_supervisor();
    ids.extend(send_many(&south, "second", 5));
    answered_once(&south, &north, &ids);
    // The first five went out again, and the stream dropped them by id.
    assert!(
        link(&south)["duplicates"].as_u64().is_some()
            && records(&north.agent("echo").inbox()).len() == 10,
        "north's echo agent got 10 messages"
    );
    // Cut to nothing while the bridge runs.
    let outbound = south.layout().federation_outbound();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&outbound)
        .and_then(|f| f.set_len(0))
        .expect("cut outbound.jsonl");
    ids.extend(send_many(&south, "third", 3));
    answered_once(&south, &north, &ids);
}

const TOKEN: &str = "fed-s3cret-t0ken";

/// Credentials come from the supervisor's environment only: they are in no
/// file of either society, and no agent inherits them. A wrong one is said.
#[test]
fn credentials_stay_out_of_the_societies_and_their_agents() {
    let server = Nats::start_with(&format!("authorization {{ token: \"{TOKEN}\" }}"));
    let (mut north, mut south) = pair(&server.url());
    north.start_supervisor_with(&[("SOCIETY_NATS_TOKEN", TOKEN)]);
    south.start_supervisor_with(&[("SOCIETY_NATS_TOKEN", TOKEN)]);
    let ids = send_many(&south, "authorised", 3);
    answered_once(&south, &north, &ids);
    let echo = north.agent_pid("echo").expect("echo runs");
    let environ = std::fs::read(format!("/proc/{echo}/environ")).expect("the agent's environment");
    assert!(
        !String::from_utf8_lossy(&environ).contains("SOCIETY_NATS_TOKEN"),
        "an agent inherited the NATS token"
    );
    for s in [&north, &south] {
        for path in walk(s.root()) {
            let bytes = std::fs::read(&path).unwrap_or_default();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(TOKEN),
                "the token is in {}",
                path.display()
            );
        }
    }
    let mut west = Society::new(BIN, &federated("west", &server.url(), ""));
    west.start_supervisor_with(&[("SOCIETY_NATS_TOKEN", "wrong")]);
    west.ok(&["send", "echo@north", "refused?"]);
    let said = wait_until(SOON, "west's link to say why it is not connected", || {
        let v = link(&west);
        (v["connected"] == false
            && v["pending"] == 1
            && v["last_error"]
                .as_str()
                .is_some_and(|e| e.to_lowercase().contains("authorization")))
        .then_some(v)
    });
    eprintln!("{said}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => out.extend(walk(&path)),
            Ok(t) if t.is_file() => out.push(path),
            _ => {}
        }
    }
    out
}

/// `tls://` in the URL: the bridge connects with TLS, trusting the CA in
/// `SOCIETY_NATS_CA`.
#[test]
fn tls_when_the_url_says_so() {
    let certs = tempfile::tempdir().expect("temp dir");
    let d = certs.path();
    let openssl = |args: &[&str]| {
        let ok = std::process::Command::new("openssl")
            .args(args)
            .current_dir(d)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "openssl {args:?} failed");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=society test CA",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
    );
    std::fs::write(d.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("san");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    let server = Nats::start_with(&format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\" }}",
        d.join("server.pem").display(),
        d.join("server.key").display()
    ));
    let url = server.url().replace("nats://", "tls://");
    let (mut north, mut south) = pair(&url);
    let ca = d.join("ca.pem").display().to_string();
    north.start_supervisor_with(&[("SOCIETY_NATS_CA", &ca)]);
    south.start_supervisor_with(&[("SOCIETY_NATS_CA", &ca)]);
    let ids = send_many(&south, "over tls", 3);
    answered_once(&south, &north, &ids);
    assert_eq!(link(&south)["servers"], json!([url]));
}

/// A case opened in south reaches an agent of north, which asks south's
/// orchestrator for approval; the answer goes back across. North's log of
/// the case starts with `created`, naming the society it came from.
#[test]
fn an_approval_and_a_case_span_two_societies() {
    let server = Nats::start();
    let url = server.url();
    let asker = "[[agent]]\nid = \"asker\"\nkeep_alive = true\n[agent.brain]\nkind = \"script\"\n[[agent.brain.rules]]\ntype = \"task\"\nactions = [{ do = \"send\", to = \"orchestrator@south\", type = \"approval_request\", body = { plan = \"ship it\" } }]\n";
    let mut north = Society::new(BIN, &federated("north", &url, asker));
    let mut south = Society::new(BIN, &federated("south", &url, ""));
    north.start_supervisor();
    south.start_supervisor();
    let case = south
        .ok(&["case", "new", "spanning two societies"])
        .trim()
        .to_string();
    south.ok(&["send", "asker@north", "go", "--case", &case]);
    let request = wait_until(SOON, "asker@north's approval request in south", || {
        let pending = json_of(&south, &["approvals", "--json"]);
        pending.as_array().and_then(|a| a.first()).cloned()
    });
    assert_eq!(request["from"], "asker@north", "{request}");
    let id = request["id"].as_str().expect("id").to_string();
    south.ok(&["approve", &id, "--note", "fine"]);
    let answer = wait_until(SOON, "the answer in asker's inbox", || {
        messages(&north.agent("asker").inbox(), "approval_response")
            .into_iter()
            .next()
    });
    assert_eq!(answer["from"], "orchestrator@south", "{answer}");
    assert_eq!(answer["body"]["approved"], true, "{answer}");
    assert_eq!(answer["body"]["note"], "fine", "{answer}");
    assert_eq!(answer["case"], case.as_str(), "{answer}");
    let theirs = records(&south.layout().case_log(&case.parse().expect("case id")));
    let events: Vec<&str> = theirs.iter().filter_map(|r| r["event"].as_str()).collect();
    for e in ["created", "message", "approval_requested", "approved"] {
        assert!(
            events.contains(&e),
            "south's case log lacks {e}: {events:?}"
        );
    }
    let ours = records(&north.layout().case_log(&case.parse().expect("case id")));
    assert_eq!(
        ours.first().map(|r| r["event"].clone()),
        Some(json!("created")),
        "{ours:?}"
    );
    assert_eq!(ours[0]["society"], "south", "{ours:?}");
    let listed = north.ok(&["case", "list"]);
    assert!(listed.contains("of society south"), "{listed}");
}

/// `[society]` and `[federation]` are read when the supervisor starts:
/// `config reload` says so when they changed, and a restart applies them.
#[test]
fn federation_settings_take_effect_at_the_next_start() {
    let server = Nats::start();
    let mut s = Society::new(BIN, ECHO);
    s.start_supervisor();
    let quiet = json_of(&s, &["config", "reload", "--json"]);
    assert_eq!(quiet["federation_note"], Value::Null, "{quiet}");
    std::fs::write(
        s.root().join("society.toml"),
        federated("west", &server.url(), ECHO),
    )
    .expect("society.toml");
    let (c, _, err) = code(&s, &["config", "reload"]);
    assert_eq!(c, 0, "{err}");
    assert!(
        err.contains("take effect when the supervisor starts"),
        "{err}"
    );
    s.stop_supervisor();
    s.start_supervisor();
    wait_until(SOON, "west's link", || {
        (link(&s)["connected"] == true).then_some(())
    });
    let after = json_of(&s, &["config", "reload", "--json"]);
    assert_eq!(after["federation_note"], Value::Null, "{after}");
}

/// Retention rotates `outbound.jsonl` into `archive/` once the NATS server
/// has every line of it, so the log does not grow for ever; a supervisor
/// killed between the rename and the state that records it starts the new
/// file at 0: nothing sent twice, nothing skipped, no false "cut" alarm.
#[test]
fn the_outbound_log_is_rotated_once_acknowledged_even_across_a_crash() {
    let server = Nats::start();
    let url = server.url();
    let mut north = Society::new(BIN, &federated("north", &url, ECHO));
    let mut south = Society::new(BIN, &federated("south", &url, "rotate_bytes = 3000\n"));
    north.start_supervisor();
    south.start_supervisor();
    let layout = south.layout();
    let outbound = layout.federation_outbound();
    let segments = || society_core::segments::list(&layout, &outbound).expect("list segments");
    let mut ids = Vec::new();
    for round in 0..3 {
        // About 3,200 bytes: past `rotate_bytes`.
        ids.extend(send_many(&south, &format!("round {round}"), 16));
        answered_once(&south, &north, &ids);
        wait_until(SOON, "outbound.jsonl rotated", || {
            (segments().len() > round).then_some(())
        });
    }
    // The link, checked for the alarm a log cut below the cursor raises.
    let no_cut_alarm = |s: &Society, what: &str| {
        let v = link(s);
        assert!(
            !v["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("shorter than the bridge's cursor")),
            "{what} is no cut: {v}"
        );
        v
    };
    let state = |s: &Society| {
        society_runtime::federation::LinkState::load(&s.layout())
            .expect("federation.json reads")
            .expect("federation.json exists")
    };
    wait_until(SOON, "the segments compressed", || {
        segments().iter().all(|s| s.compressed).then_some(())
    });
    // Every message in exactly one place: a segment or the live file.
    let sent = |ids: &[String]| {
        let all = society_core::segments::read_objects_all(&layout, &outbound).expect("read all");
        for id in ids {
            let copies = all.iter().filter(|r| r["id"] == id.as_str()).count();
            assert_eq!(copies, 1, "{id} once in outbound's segments and live file");
        }
        assert_eq!(all.len(), ids.len(), "nothing else in outbound");
    };
    sent(&ids);
    let live = std::fs::metadata(&outbound).map_or(0, |m| m.len());
    assert!(live < 4000, "the live file starts again: {live} bytes");
    let v = link(&south);
    assert_eq!(v["pending"], 0, "{v}");
    assert_eq!(state(&south).seg, segments().len() as u64);
    let (c, out, _) = code(&south, &["fsck"]);
    assert_eq!(c, 0, "fsck is clean after rotations: {out}");

    // Killed right after a rotation's rename, before the state records it.
    south.stop_supervisor();
    south.start_supervisor_with(&[("SOCIETY_FAULTS", "federation.outbound.rotated")]);
    let before = segments().len();
    let mut round = 0;
    wait_until(
        Duration::from_secs(60),
        "the supervisor to abort in a rotation",
        || {
            round += 1;
            // `--no-start`: once it died, a `send` would start another.
            for i in 0..5 {
                let text = format!("crash {round} {i}");
                let id = south.ok(&["send", "--no-start", "echo@north", &text]);
                ids.push(id.trim().to_string());
            }
            // The round routed and all published (a quiet moment in which
            // a due rotation happens), or the supervisor gone (reaped: it
            // says so once).
            let last = ids.last().expect("a round sent").clone();
            let mut exited = false;
            wait_until(SOON, "the round published or the supervisor gone", || {
                exited = south.supervisor_exited();
                let routed = records(&outbound).iter().any(|r| r["id"] == last.as_str());
                (exited || (routed && link(&south)["pending"] == 0)).then_some(())
            });
            exited.then_some(())
        },
    );
    assert_eq!(segments().len(), before + 1, "it died after the rename");
    assert!(
        state(&south).seg < segments().len() as u64,
        "and before the state recorded it: {:?} {:?}",
        state(&south),
        segments()
    );
    let (c, out, _) = code(&south, &["fsck"]);
    assert_eq!(c, 0, "the cursor of the rotated file is no problem: {out}");
    south.start_supervisor();
    ids.extend(send_many(&south, "after", 5));
    answered_once(&south, &north, &ids);
    sent(&ids);
    let v = no_cut_alarm(&south, "a rotation");
    assert_eq!(v["pending"], 0, "{v}");
    let (c, out, _) = code(&south, &["fsck"]);
    assert_eq!(c, 0, "fsck is clean after the crash: {out}");

    // A power cut: `federation.json` is fsynced only just before a
    // rotation, so what survives may be that state — the cursor at the end
    // of the file since rotated, `seg` before it — while the new live file
    // holds lines the router appended (durably) after it.
    let rotated = segments().len();
    let live_len = || std::fs::metadata(&outbound).map_or(0, |m| m.len());
    let mut fills = 0;
    wait_until(
        Duration::from_secs(60),
        "a rotation that leaves the live file empty",
        || {
            if segments().len() > rotated && live_len() == 0 {
                return Some(());
            }
            // Not yet due: more (distinct bodies: the receiver's guard blocks a
            // flood of identical ones); due: the next scan rotates it once the
            // server has all of it.
            if live_len() < 3000 {
                fills += 1;
                ids.extend(send_many(&south, &format!("fill {fills}"), 4));
            }
            None
        },
    );
    ids.extend(send_many(&south, "tail", 2));
    answered_once(&south, &north, &ids);
    south.stop_supervisor();
    let last = segments().pop().expect("a segment");
    let mut durable = state(&south);
    durable.cursor = society_core::segments::read_segment(&last)
        .expect("read the segment")
        .len() as u64;
    durable.seg = last.seq;
    std::fs::write(
        layout.federation_state(),
        serde_json::to_vec(&durable).expect("state to JSON"),
    )
    .expect("write the state a power cut left");
    let live = records(&outbound).len();
    assert_eq!(live, 2, "the live file holds the two tail messages");
    let (c, out, _) = code(&south, &["fsck"]);
    assert_eq!(c, 0, "a cursor into the rotated file is no problem: {out}");
    assert_eq!(
        link(&south)["pending"],
        2,
        "the live file is sent again from its start"
    );
    south.start_supervisor();
    ids.extend(send_many(&south, "after the cut", 3));
    answered_once(&south, &north, &ids);
    sent(&ids);
    no_cut_alarm(&south, "a power cut after a rotation");
    south.stop_supervisor();
    north.stop_supervisor();
}
