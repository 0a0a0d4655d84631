//! Approval requests and their answers, read from the files alone.
//!
//! A request is an `approval_request` envelope in `orchestrator/inbox.jsonl`:
//! from an agent (body `{plan, rationale, alternatives, revision, parked}`) or
//! from the supervisor for a message held by an `approve` routing rule (body
//! `{kind: "route", plan, rule, held}`), or from the supervisor for a debate
//! that expired without consensus (body `{kind: "debate", agent, plan,
//! areas_of_disagreement, ...}`, answered to the proposer `agent`). The answer is a `decide` control
//! request in `supervisor/inbox.jsonl`. Both files are append-only, so
//! "pending" is simply "a request with no decide for its id": it survives a
//! restart of anything, and the CLI and the supervisor can never disagree.

use crate::control::Request;
use serde::Serialize;
use serde_json::Value;
use society_core::jsonl::read_lines;
use society_core::kinds::message;
use society_core::{CaseId, Envelope, FormatError, Layout, MsgId, Party};
use std::collections::HashMap;
use std::path::Path;

/// Who asked, and so who receives the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An agent asked before acting; the answer goes back to it.
    Agent,
    /// The supervisor holds a message under an `approve` routing rule; the
    /// answer releases or drops it.
    Route,
    /// A debate expired without consensus; the answer goes to its proposer
    /// (`body.agent`).
    Debate,
    /// A case reached a milestone gate; the answer goes to the agent that
    /// reached it (`body.agent`), a rejection's notes to `body.revise_to`.
    Gate,
}

/// One approval request, as the orchestrator sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Approval {
    pub id: MsgId,
    pub ts: String,
    pub from: Party,
    pub case: Option<CaseId>,
    pub kind: Kind,
    pub plan: String,
    pub rationale: Option<String>,
    pub alternatives: Vec<Value>,
    pub revision: Option<u64>,
    /// The request's whole body (the parked or held envelope included).
    pub body: Value,
    /// Where it waits in the organisation (a lead's id, or `orchestrator`),
    /// and the chain it went through; null and empty outside any hierarchy.
    pub at: Option<String>,
    pub chain: Vec<Value>,
}

impl Approval {
    fn from_envelope(env: Envelope) -> Approval {
        let body = env.body;
        let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
        let kind = match body.get("kind").and_then(Value::as_str) {
            Some("route") => Kind::Route,
            Some("debate") => Kind::Debate,
            Some("gate") => Kind::Gate,
            _ => Kind::Agent,
        };
        let plan = match kind {
            Kind::Debate => debate_plan(&body),
            _ => text("plan").or_else(|| text("text")).unwrap_or_default(),
        };
        Approval {
            id: env.id,
            ts: env.ts,
            from: env.from,
            case: env.case,
            kind,
            plan,
            rationale: text("rationale"),
            alternatives: body
                .get("alternatives")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            revision: body.get("revision").and_then(Value::as_u64),
            body,
            at: None,
            chain: Vec::new(),
        }
    }

    /// For a route request: the message the supervisor holds.
    pub fn held(&self) -> Option<&Value> {
        self.body.get("held")
    }

    /// For a debate request: the proposer, who receives the answer.
    pub fn proposer(&self) -> Option<&str> {
        matches!(self.kind, Kind::Debate | Kind::Gate)
            .then(|| self.body.get("agent").and_then(Value::as_str))
            .flatten()
    }
}

/// A debate's plan as one line: the plan (a text, or its JSON) and what the
/// participants could not agree on.
fn debate_plan(body: &Value) -> String {
    let plan = match body.get("plan") {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    };
    let keys: Vec<&str> = body
        .get("areas_of_disagreement")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let what = body
        .get("decision")
        .and_then(Value::as_str)
        .map_or(String::new(), |d| format!("debate {d}: "));
    if keys.is_empty() {
        format!("{what}{plan} (no consensus)")
    } else {
        format!("{what}{plan} (disagreement on {})", keys.join(", "))
    }
}

/// The orchestrator's (or a lead's) answer to one request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub approve: bool,
    pub note: Option<String>,
    /// When it was made (the control envelope's `ts`).
    pub ts: String,
    /// A lead that answered within its scope; `None`: the orchestrator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// Every approval request in the orchestrator inbox, in file order —
/// its archived segments too, each through its sidecar of requests (see
/// `supervisor/retention.rs`), so the history is never decompressed.
pub fn requests(layout: &Layout) -> Result<Vec<Approval>, FormatError> {
    let items = crate::org::Items::load(layout)?;
    Ok(request_envelopes(layout)?
        .into_iter()
        .map(|env| {
            let item = items.get(&env.id).cloned();
            let mut a = Approval::from_envelope(env);
            if let Some(item) = item {
                a.at = Some(item.at);
                a.chain = item.chain;
            }
            a
        })
        .collect())
}

/// The sidecar of an orchestrator-inbox segment: just its approval requests
/// (`<stem>.<seq>.requests.jsonl`, written by the supervisor when it
/// archives the segment).
pub fn requests_sidecar(seg: &society_core::segments::Segment) -> std::path::PathBuf {
    let name = seg.path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let stem = name
        .strip_suffix(".jsonl.zst")
        .or_else(|| name.strip_suffix(".jsonl"))
        .unwrap_or(name);
    seg.path.with_file_name(format!("{stem}.requests.jsonl"))
}

/// The approval-request envelopes of the orchestrator's inbox, segments first.
pub fn request_envelopes(layout: &Layout) -> Result<Vec<Envelope>, FormatError> {
    let mut out = Vec::new();
    let mut keep = |env: Envelope| {
        if env.kind == message::APPROVAL_REQUEST {
            out.push(env);
        }
    };
    let live = layout.orchestrator_inbox();
    for seg in society_core::segments::list(layout, &live)? {
        let sidecar = requests_sidecar(&seg);
        if sidecar.exists() {
            for_each_envelope(&sidecar, &mut keep)?;
        } else {
            for line in society_core::segments::lines(&seg)? {
                if let Ok(env) = Envelope::parse(&line?) {
                    keep(env);
                }
            }
        }
    }
    for_each_envelope(&live, &mut keep)?;
    // Requests waiting at a lead are not in the orchestrator's inbox (yet).
    let items = crate::org::Items::load(layout)?;
    let known: std::collections::HashSet<MsgId> = out.iter().map(|e| e.id).collect();
    for item in items.0.values() {
        if item.kind == crate::org::APPROVAL && !known.contains(&item.item) {
            out.push(item.request.clone());
        }
    }
    Ok(out)
}

/// Every decision recorded in the supervisor inbox, by request id. When a
/// request was answered twice (two racing CLIs), the first answer stands:
/// it is the one the supervisor acts on.
pub fn decisions(layout: &Layout) -> Result<HashMap<MsgId, Decision>, FormatError> {
    let mut out = HashMap::new();
    let live = layout.supervisor_inbox();
    let mut all = Vec::new();
    for seg in society_core::segments::list(layout, &live)? {
        for line in society_core::segments::lines(&seg)? {
            all.extend(Envelope::parse(&line?).ok());
        }
    }
    for_each_envelope(&live, |env| all.push(env))?;
    for env in all {
        if env.kind != message::CONTROL || env.from != Party::Orchestrator {
            continue;
        }
        if let Ok(Request::Decide {
            request,
            approve,
            note,
            ..
        }) = serde_json::from_value(env.body)
        {
            out.entry(request).or_insert(Decision {
                approve,
                note,
                ts: env.ts,
                by: None,
            });
        }
    }
    // A lead's answer is in the escalation log only if it came first (the
    // supervisor refuses a later one and any later `decide`).
    for d in crate::org::Items::load(layout)?.lead_decisions() {
        out.insert(
            d.request,
            Decision {
                approve: d.approved,
                note: d.note,
                ts: d.ts,
                by: Some(d.by),
            },
        );
    }
    Ok(out)
}

/// Requests that have no decision yet, oldest first.
pub fn pending(layout: &Layout) -> Result<Vec<Approval>, FormatError> {
    let decided = decisions(layout)?;
    let mut all = requests(layout)?;
    all.retain(|a| !decided.contains_key(&a.id));
    Ok(all)
}

/// Calls `f` with every valid envelope of a JSONL file. Lines that are not
/// valid envelopes are skipped: quarantining them is the consumer's job, and a
/// reader must never stop at one.
fn for_each_envelope(path: &Path, mut f: impl FnMut(Envelope)) -> Result<(), FormatError> {
    let mut cursor = 0;
    loop {
        let batch = read_lines(path, cursor, 4 << 20)?;
        if batch.lines.is_empty() {
            return Ok(());
        }
        for line in batch.lines {
            if let Ok(env) = Envelope::parse(&line.bytes) {
                f(env);
            }
        }
        cursor = batch.next;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::control;
    use serde_json::json;
    use society_core::jsonl::{append_one, Durability};

    fn append(path: &Path, env: &Envelope) {
        append_one(path, &env.to_line(), Durability::Flushed, usize::MAX).unwrap();
    }

    fn request(from: &str, body: Value) -> Envelope {
        let mut env = Envelope::new(
            from.parse().unwrap(),
            Party::Orchestrator,
            message::APPROVAL_REQUEST,
            body,
        );
        env.case = Some(CaseId::new("c-1").unwrap());
        env
    }

    #[test]
    fn pending_is_requests_without_a_decision() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::at(dir.path());
        layout.create().unwrap();
        let inbox = layout.orchestrator_inbox();
        assert!(pending(&layout).unwrap().is_empty(), "empty society");

        let a = request(
            "research",
            json!({"plan": "delete the cache", "rationale": "stale", "alternatives": ["keep"],
                   "revision": 2, "parked": {}}),
        );
        let b = request(
            "supervisor",
            json!({"kind": "route", "plan": "deliver to audio", "rule": 0, "held": {"to": "audio"}}),
        );
        append(&inbox, &a);
        // Noise that must be skipped: another type, a torn line, bad JSON.
        let other = Envelope::new(Party::Supervisor, Party::Orchestrator, "reply", json!({}));
        append(&inbox, &other);
        append_one(&inbox, b"{not json", Durability::Flushed, usize::MAX).unwrap();
        append(&inbox, &b);

        let all = requests(&layout).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].id, a.id);
        assert_eq!(all[0].kind, Kind::Agent);
        assert_eq!(all[0].plan, "delete the cache");
        assert_eq!(all[0].rationale.as_deref(), Some("stale"));
        assert_eq!(all[0].alternatives, [json!("keep")]);
        assert_eq!(all[0].revision, Some(2));
        assert_eq!(all[1].kind, Kind::Route);
        assert_eq!(all[1].held(), Some(&json!({"to": "audio"})));

        control::send(
            &layout,
            &Request::Decide {
                request: a.id,
                approve: false,
                note: Some("no".into()),
                how: None,
            },
        )
        .unwrap();
        // A later, contradicting answer does not replace the first.
        control::send(
            &layout,
            &Request::Decide {
                request: a.id,
                approve: true,
                note: None,
                how: None,
            },
        )
        .unwrap();
        let decided = decisions(&layout).unwrap();
        assert_eq!(decided.len(), 1);
        assert!(!decided[&a.id].approve);
        assert_eq!(decided[&a.id].note.as_deref(), Some("no"));
        let left = pending(&layout).unwrap();
        assert_eq!(left.iter().map(|p| p.id).collect::<Vec<_>>(), [b.id]);
    }

    #[test]
    fn a_debate_request_shows_its_plan_its_disagreement_and_its_proposer() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::at(dir.path());
        layout.create().unwrap();
        let ask = request(
            "supervisor",
            json!({"kind": "debate", "agent": "director", "decision": "ep1-lighting",
                   "plan": {"contrast": "low"}, "areas_of_disagreement": ["contrast", "haze"],
                   "rationale": "dreamlike", "alternatives": ["flat"], "revision": 1}),
        );
        append(&layout.orchestrator_inbox(), &ask);
        let got = requests(&layout).unwrap();
        assert_eq!(got[0].kind, Kind::Debate);
        assert_eq!(
            got[0].plan,
            r#"debate ep1-lighting: {"contrast":"low"} (disagreement on contrast, haze)"#
        );
        assert_eq!(got[0].proposer(), Some("director"));
        assert_eq!(got[0].rationale.as_deref(), Some("dreamlike"));
        assert_eq!(got[0].revision, Some(1));
    }

    #[test]
    fn decisions_only_count_from_the_orchestrator() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::at(dir.path());
        layout.create().unwrap();
        let a = request("research", json!({"plan": "p"}));
        append(&layout.orchestrator_inbox(), &a);
        // An agent cannot approve its own request by writing a decide.
        let forged = Envelope::new(
            "research".parse().unwrap(),
            Party::Supervisor,
            message::CONTROL,
            json!({"op": "decide", "request": a.id, "approve": true}),
        );
        append(&layout.supervisor_inbox(), &forged);
        assert_eq!(pending(&layout).unwrap().len(), 1);
    }
}
