//! The checks, in the order they run, and what they share: flooding an
//! inbox, reading the replies, exactly-once and fsck. Sizes shrink with
//! `--quick`.

/// Fails the check with a message unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(Failed::Unmet(format!($($fmt)+)));
        }
    };
}

mod cases;
mod delivery;
mod governance;
mod processes;

use super::{records, Check, Failed, Scratch};
use crate::fsck::Severity;
use serde_json::{json, Value};
use society_core::jsonl::{append_one, Durability};
use society_core::{Envelope, Party};
use std::collections::HashSet;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

pub static ALL: [Check; 13] = [
    Check {
        name: "round_trip",
        promise: "a message to an echo agent comes back once",
        run: delivery::round_trip,
    },
    Check {
        name: "multi_stage_case",
        promise: "a case runs through three agents with every event once",
        run: cases::multi_stage_case,
    },
    Check {
        name: "sigkill_mid_message",
        promise: "SIGKILL mid-message loses and doubles nothing",
        run: processes::sigkill_mid_message,
    },
    Check {
        name: "supervisor_sigkill",
        promise: "agents outlive a SIGKILLed supervisor and are adopted",
        run: processes::supervisor_sigkill,
    },
    Check {
        name: "torn_tail",
        promise: "a torn inbox line is dead-lettered, the next message handled",
        run: delivery::torn_tail,
    },
    Check {
        name: "lock_contention",
        promise: "a second process on a folder exits with code 3",
        run: processes::lock_contention,
    },
    Check {
        name: "hung_agent",
        promise: "a hung agent is killed and restarted",
        run: processes::hung_agent,
    },
    Check {
        name: "crash_loop",
        promise: "a crash loop ends in failed; restart recovers",
        run: processes::crash_loop,
    },
    Check {
        name: "approval_restarts",
        promise: "an approval survives restarts of everything",
        run: cases::approval_restarts,
    },
    Check {
        name: "message_loop",
        promise: "two agents messaging each other forever are cut off, under the defaults",
        run: delivery::message_loop,
    },
    Check {
        name: "many_agents",
        promise: "more agents than inotify instances allow",
        run: processes::many_agents,
    },
    Check {
        name: "fsck_clean",
        promise: "fsck finds a busy society clean",
        run: delivery::fsck_clean,
    },
    Check {
        name: "film_crew_learns",
        promise: "the film crew asks for approval less as it learns",
        run: governance::film_crew_learns,
    },
];

/// Sends `n` messages straight into an agent's inbox (the CLI's own path is
/// exercised by the other checks); returns their ids.
fn flood(s: &Scratch, to: &str, n: usize) -> Result<Vec<String>, Failed> {
    let inbox = s.agent(to).inbox();
    let party: Party = to
        .parse()
        .map_err(|e| Failed::Unmet(format!("bad agent id {to:?}: {e}")))?;
    (0..n)
        .map(|i| {
            let env = Envelope::new(Party::Orchestrator, party.clone(), "task", json!({"n": i}));
            append_one(&inbox, &env.to_line(), Durability::Durable, 1 << 20)
                .map_err(|e| Failed::Unmet(format!("cannot append to {}: {e}", inbox.display())))?;
            Ok(env.id.to_string())
        })
        .collect()
}

/// Everything in the orchestrator's inbox.
fn replies(s: &Scratch) -> Vec<Value> {
    records(&s.layout().orchestrator_inbox())
}

/// Waits for a reply to message `id`.
fn wait_reply(s: &Scratch, id: &str, what: &str) -> Result<(), Failed> {
    super::wait_until(T, what, || {
        replies(s)
            .iter()
            .any(|r| r["reply_to"] == *id)
            .then_some(())
    })
}

/// Every sent id answered exactly once, and no id twice in the inbox.
fn exactly_once(s: &Scratch, sent: &[String]) -> Result<(), Failed> {
    let got = replies(s);
    let mut seen = HashSet::new();
    for r in &got {
        let id = r["id"].as_str().unwrap_or_default().to_string();
        ensure!(seen.insert(id), "duplicate reply id {}", r["id"]);
    }
    for id in sent {
        let n = got.iter().filter(|r| r["reply_to"] == *id).count();
        ensure!(n == 1, "message {id} has {n} replies");
    }
    Ok(())
}

/// `fsck` finds no problem in the society.
fn fsck(s: &Scratch) -> Result<crate::fsck::Report, Failed> {
    let report = crate::fsck::run(&s.layout(), false)
        .map_err(|e| Failed::Unmet(format!("fsck could not run: {e}")))?;
    let problems: Vec<String> = report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Problem)
        .map(|f| format!("{}: {}", f.check, f.reason))
        .collect();
    ensure!(problems.is_empty(), "fsck: {problems:?}");
    Ok(report)
}

/// Stops the foreground supervisor, then requires a clean fsck.
fn finish(s: &mut Scratch) -> Result<crate::fsck::Report, Failed> {
    s.stop_supervisor()?;
    fsck(s)
}
