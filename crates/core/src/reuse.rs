//! Skills vs state: what an agent folder keeps across engagements, what it
//! resets, and the summary of its experience (`metadata.json`) by which
//! `society spawn ROLE --purpose TEXT` picks a dormant folder to reuse.
//!
//! Theory of operation. A folder's entries fall in three classes, named
//! here and nowhere else ([`class_of`]):
//!
//! * **kept** — what the agent has learned: `config.json`, `metadata.json`,
//!   `skills/`, `memory.*` (the memory log and its derived indexes),
//!   `decisions.jsonl`, `learning/`, and `archive/` (the archived state of
//!   its earlier purposes).
//! * **continued** — per-engagement state that is reset by being *consumed*,
//!   never moved: the delivery files (`inbox.jsonl`, `outbox.jsonl`,
//!   `deadletter.jsonl`, `checkpoint.json`, `status.json`, `process.lock`)
//!   carry cursors that the router, retention and `fsck` hold by byte
//!   offset and segment, so moving them would look like a truncation; the
//!   audit ledgers (`activity.jsonl`, `tools.jsonl`, `costs.jsonl`) stay
//!   whole (budgets read every `costs.jsonl`; a `purpose_transition` record
//!   marks where an engagement begins). A folder is reused only when its
//!   inbox is fully consumed, so nothing of the old engagement is pending.
//! * **engagement** — everything else (`workspace/`, `conversations/`,
//!   `cases/`, any other file): moved whole into
//!   `archive/purpose-<N>-<yyyy-mm-dd>/` on reuse, and the folder skeleton
//!   made again.
//!
//! `metadata.json` is a summary, replaced atomically by whoever holds the
//! folder's `process.lock` (the agent when caught up; the CLI while it holds
//! the lock of a dormant folder). Its counts are copied from the
//! checkpoint's [`Experience`], which is saved in the same write that
//! consumes each message, so a crash can leave the summary stale, never wrong
//! for long or doubled: the next write copies the counts again.

use crate::state::AgentCheckpoint;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub mod score;

/// The name of the summary file in an agent's folder.
pub const METADATA: &str = "metadata.json";
/// The folder (inside an agent's folder) holding archived engagements.
pub const ARCHIVE: &str = "archive";
/// The folder of skills.
pub const SKILLS: &str = "skills";

/// Entries kept across engagements, by exact name.
const KEPT: &[&str] = &[
    "config.json",
    METADATA,
    SKILLS,
    "decisions.jsonl",
    "learning",
    ARCHIVE,
];
/// Entries kept across engagements, by prefix: `memory.jsonl` and every
/// index derived from it.
const KEPT_PREFIXES: &[&str] = &["memory."];
/// State reset by being consumed, not moved (module docs).
const CONTINUED: &[&str] = &[
    "process.lock",
    "checkpoint.json",
    "checkpoint.live.json",
    "status.json",
    "inbox.jsonl",
    "outbox.jsonl",
    "deadletter.jsonl",
    "activity.jsonl",
    "tools.jsonl",
    "costs.jsonl",
];

/// What happens to a folder entry when the folder is reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Kept,
    Continued,
    Engagement,
}

/// The class of the folder entry named `name` (a direct child of
/// `agent-<id>/`).
pub fn class_of(name: &str) -> Class {
    if KEPT.contains(&name) || KEPT_PREFIXES.iter().any(|p| name.starts_with(p)) {
        Class::Kept
    } else if CONTINUED.contains(&name) || is_scratch(name) {
        Class::Continued
    } else {
        Class::Engagement
    }
}

/// A state file's scratch file (`.<name>.tmp`, see `atomic`): it goes with
/// its file.
fn is_scratch(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

/// The name of the archive of engagement `n`, ended on `date` (`yyyy-mm-dd`).
pub fn purpose_archive_name(n: u64, date: &str) -> String {
    format!("purpose-{n}-{date}")
}

/// What an agent has done, counted in its checkpoint as messages are
/// consumed (the same atomic write), never reset by reuse.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Experience {
    /// Messages handled successfully, by envelope type.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub types: BTreeMap<String, u64>,
    /// Messages handled that belonged to a case.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub case_messages: u64,
    /// `approval_response`s received with `approved: true`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub approved: u64,
    /// `approval_response`s received with an `approved` verdict at all.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub approval_responses: u64,
}

/// Distinct message types counted by name; the rest under [`OTHER_TYPES`].
pub const MAX_TYPES: usize = 128;
/// The count of types past [`MAX_TYPES`] (not a valid type name).
pub const OTHER_TYPES: &str = "(other)";

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Experience {
    pub fn is_empty(&self) -> bool {
        *self == Experience::default()
    }

    /// Counts one message handled successfully.
    pub fn note(&mut self, env: &crate::Envelope) {
        if env.kind == crate::kinds::message::PURPOSE {
            return;
        }
        let full = self.types.len() >= MAX_TYPES;
        match self.types.get_mut(&env.kind) {
            Some(n) => *n += 1,
            // Types are an open set: the checkpoint is rewritten with every
            // message, so past a bound the rest are counted together.
            None if full => *self.types.entry(OTHER_TYPES.to_string()).or_default() += 1,
            None => {
                self.types.insert(env.kind.clone(), 1);
            }
        }
        if env.case.is_some() {
            self.case_messages += 1;
        }
        if env.kind == crate::kinds::message::APPROVAL_RESPONSE {
            if let Some(ok) = env
                .body
                .get("approved")
                .and_then(serde_json::Value::as_bool)
            {
                self.approval_responses += 1;
                if ok {
                    self.approved += 1;
                }
            }
        }
    }
}

/// One purpose the folder served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Purpose {
    /// 1 for the first purpose, +1 for each reuse.
    pub n: u64,
    pub purpose: String,
    #[serde(default)]
    pub tags: Vec<String>,
    pub started: String,
    /// Where its state went when the next purpose began (relative to the
    /// agent's folder); `None` while current.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<String>,
    /// The checkpoint's `handled` once the claim (the `purpose` message) is
    /// consumed: until the agent has handled more, the purpose has had no
    /// work yet and the folder is not dormant — a spawn right after another
    /// must not take the folder the first one was just given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handled_at_claim: Option<u64>,
}

/// The counts, as `metadata.json` shows them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExperienceSummary {
    /// Messages consumed: `successful + failed`.
    pub total_cases: u64,
    pub successful: u64,
    /// Dead-lettered.
    pub failed: u64,
    #[serde(default)]
    pub message_types: BTreeMap<String, u64>,
    #[serde(default)]
    pub case_messages: u64,
    #[serde(default)]
    pub approval_responses: u64,
    #[serde(default)]
    pub approved: u64,
    /// `approved / approval_responses`; `None` before the first.
    #[serde(default)]
    pub approval_rate: Option<f64>,
}

impl ExperienceSummary {
    pub fn of(ckpt: &AgentCheckpoint) -> ExperienceSummary {
        let e = &ckpt.experience;
        ExperienceSummary {
            total_cases: ckpt.handled + ckpt.dead_lettered,
            successful: ckpt.handled,
            failed: ckpt.dead_lettered,
            message_types: e.types.clone(),
            case_messages: e.case_messages,
            approval_responses: e.approval_responses,
            approved: e.approved,
            approval_rate: (e.approval_responses > 0)
                .then(|| e.approved as f64 / e.approval_responses as f64),
        }
    }

    /// Counts never go down: a checkpoint rebuilt by `fsck --repair` counts
    /// only its live inbox, so each count is the larger of the two (and the
    /// rate is recomputed).
    pub fn at_least(mut self, other: &ExperienceSummary) -> ExperienceSummary {
        if other.total_cases <= self.total_cases {
            return self;
        }
        self.total_cases = other.total_cases;
        self.successful = self.successful.max(other.successful);
        self.failed = self.failed.max(other.failed);
        for (t, n) in &other.message_types {
            let mine = self.message_types.entry(t.clone()).or_default();
            *mine = (*mine).max(*n);
        }
        self.case_messages = self.case_messages.max(other.case_messages);
        self.approval_responses = self.approval_responses.max(other.approval_responses);
        self.approved = self.approved.max(other.approved);
        self.approval_rate = (self.approval_responses > 0)
            .then(|| self.approved as f64 / self.approval_responses as f64);
        self
    }

    /// `successful / total_cases`, 0 before the first.
    pub fn success_rate(&self) -> f64 {
        if self.total_cases == 0 {
            0.0
        } else {
            self.successful as f64 / self.total_cases as f64
        }
    }
}

/// A retired folder: never reused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retired {
    pub at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `agent-<id>/metadata.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub agent: String,
    pub role: String,
    pub created: String,
    /// When the agent last consumed a message (or was assigned a purpose).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_active: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_purpose: Option<String>,
    #[serde(default)]
    pub total_purposes_served: u64,
    /// When the state was last archived and reset (a reuse).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_reset_at: Option<String>,
    /// Every purpose, oldest first.
    #[serde(default)]
    pub purposes: Vec<Purpose>,
    /// The union of its purposes' tags: the domains it has worked in.
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub experience: ExperienceSummary,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired: Option<Retired>,
}

impl Metadata {
    pub fn new(agent: &str, role: &str, now: &str) -> Metadata {
        Metadata {
            agent: agent.to_string(),
            role: role.to_string(),
            created: now.to_string(),
            last_active: None,
            current_purpose: None,
            total_purposes_served: 0,
            state_reset_at: None,
            purposes: Vec::new(),
            tags: Vec::new(),
            experience: ExperienceSummary::default(),
            retired: None,
        }
    }

    /// Begins a new purpose. The current one (if any) is closed with
    /// `archive`, where its state went.
    /// Why the current purpose keeps the folder although it is idle: it was
    /// claimed and has had no work since (`handled` is the checkpoint's).
    pub fn unworked_claim(&self, handled: u64) -> Option<String> {
        let p = self.purposes.last().filter(|p| p.archive.is_none())?;
        let at = p.handled_at_claim?;
        (handled <= at).then(|| format!("claimed for {:?} and given no work since", p.purpose))
    }

    pub fn begin_purpose(
        &mut self,
        purpose: &str,
        tags: &[String],
        now: &str,
        archive: Option<String>,
    ) {
        if let Some(last) = self.purposes.last_mut().filter(|p| p.archive.is_none()) {
            last.archive = archive.clone();
        }
        if archive.is_some() {
            self.state_reset_at = Some(now.to_string());
        }
        let n = self.purposes.last().map_or(1, |p| p.n + 1);
        self.purposes.push(Purpose {
            n,
            purpose: purpose.to_string(),
            tags: tags.to_vec(),
            started: now.to_string(),
            archive: None,
            handled_at_claim: None,
        });
        for t in tags {
            if !self.tags.contains(t) {
                self.tags.push(t.clone());
            }
        }
        self.current_purpose = Some(purpose.to_string());
        self.total_purposes_served = self.purposes.len() as u64;
        self.last_active = Some(now.to_string());
    }

    /// The number the next purpose will have.
    pub fn next_purpose_n(&self) -> u64 {
        self.purposes.last().map_or(1, |p| p.n + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        for kept in [
            "config.json",
            "metadata.json",
            "skills",
            "memory.jsonl",
            "memory.idx",
            "memory.idx.json",
            "decisions.jsonl",
            "learning",
            "archive",
        ] {
            assert_eq!(class_of(kept), Class::Kept, "{kept}");
        }
        for cont in [
            "inbox.jsonl",
            "checkpoint.json",
            "checkpoint.live.json",
            ".checkpoint.json.tmp",
            "process.lock",
            "costs.jsonl",
        ] {
            assert_eq!(class_of(cont), Class::Continued, "{cont}");
        }
        for eng in ["workspace", "conversations", "cases", "notes.txt", "memory"] {
            assert_eq!(class_of(eng), Class::Engagement, "{eng}");
        }
    }

    #[test]
    fn experience_counts_types_within_a_bound() {
        use crate::{Envelope, Party};
        let mut e = Experience::default();
        let env =
            |kind: &str, body| Envelope::new(Party::Orchestrator, Party::Orchestrator, kind, body);
        e.note(&env("purpose", serde_json::json!({})));
        assert!(e.is_empty(), "the claim is not experience");
        for ok in [true, true, false] {
            e.note(&env(
                "approval_response",
                serde_json::json!({"approved": ok}),
            ));
        }
        e.note(&env("approval_response", serde_json::json!({})));
        assert_eq!((e.approved, e.approval_responses), (2, 3));
        for i in 0..MAX_TYPES + 5 {
            e.note(&env(&format!("t{i}"), serde_json::json!({})));
        }
        assert_eq!(e.types.len(), MAX_TYPES + 1);
        assert_eq!(e.types[OTHER_TYPES], 6);
        assert_eq!(e.types["approval_response"], 4);
    }

    #[test]
    fn counts_never_go_down() {
        let mut big = ExperienceSummary {
            total_cases: 10,
            successful: 9,
            failed: 1,
            approval_responses: 4,
            approved: 3,
            ..ExperienceSummary::default()
        };
        big.message_types.insert("draft".into(), 9);
        // A rebuilt checkpoint that counts only its live inbox.
        let mut small = ExperienceSummary {
            total_cases: 2,
            successful: 2,
            ..ExperienceSummary::default()
        };
        small.message_types.insert("review".into(), 2);
        let merged = small.clone().at_least(&big);
        assert_eq!(
            (merged.total_cases, merged.successful, merged.failed),
            (10, 9, 1)
        );
        assert_eq!(merged.message_types["draft"], 9);
        assert_eq!(merged.message_types["review"], 2);
        assert_eq!(merged.approval_rate, Some(0.75));
        // The larger one stands as it is.
        assert_eq!(big.clone().at_least(&small), big);
    }

    #[test]
    fn purposes_accumulate() {
        let mut m = Metadata::new("w-1", "w", "t0");
        m.begin_purpose("first", &["a".into()], "t1", None);
        m.begin_purpose(
            "second",
            &["a".into(), "b".into()],
            "t2",
            Some("archive/p1".into()),
        );
        assert_eq!(m.total_purposes_served, 2);
        assert_eq!(m.purposes[0].archive.as_deref(), Some("archive/p1"));
        assert_eq!(m.purposes[1].n, 2);
        assert_eq!(m.tags, vec!["a", "b"]);
        assert_eq!(m.current_purpose.as_deref(), Some("second"));
        assert_eq!(m.state_reset_at.as_deref(), Some("t2"));
    }
}
