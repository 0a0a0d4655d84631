//! Items travelling up the organisation — escalations and approval
//! requests sent to a lead rather than straight to the orchestrator — read
//! from `supervisor/escalations.jsonl` alone.
//!
//! The supervisor writes that log through its write-ahead batches (never
//! directly): `opened` when an item first waits somewhere, `moved` when it
//! goes one node up (its lead did not answer in time, escalated it, or it is
//! beyond the lead's scope), `answered` when someone settles it. Every
//! record carries the whole chain so far, so `grep item` shows the path.
//! Folding the log gives where each item waits and until when: the
//! supervisor folds it at start (timers survive a SIGKILL) and the CLI folds
//! it for `approvals`, `tree` and `status`.

use serde::Serialize;
use serde_json::{json, Value};
use society_core::jsonl::read_lines;
use society_core::{CaseId, Envelope, FormatError, Layout, MsgId};
use std::collections::BTreeMap;

/// Record names of the log.
pub mod record {
    pub const OPENED: &str = "opened";
    pub const MOVED: &str = "moved";
    pub const ANSWERED: &str = "answered";
}

/// Item kinds.
pub const ESCALATION: &str = "escalation";
pub const APPROVAL: &str = "approval";

/// Why an item left a node (the chain's `outcome`).
pub mod outcome {
    pub const TIMEOUT: &str = "timeout";
    pub const ESCALATED: &str = "escalated";
    pub const OUT_OF_SCOPE: &str = "out_of_scope";
}

/// One escalation or approval request and where it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    pub item: MsgId,
    /// [`ESCALATION`] or [`APPROVAL`].
    pub kind: String,
    /// Where it waits: an agent id, or `orchestrator`.
    pub at: String,
    /// The message delivered where it waits (a lead answers by replying to it).
    pub msg: MsgId,
    /// When the lead's time is up (ms since the epoch; 0 at the orchestrator).
    pub due: u64,
    /// `[{node, outcome, reason}]`, oldest first; the last entry is `at`.
    pub chain: Vec<Value>,
    pub parties: Vec<String>,
    pub case: Option<CaseId>,
    /// The approval request, or the escalation as the orchestrator would get it.
    pub request: Envelope,
    /// `{by, how, note}` once settled.
    pub answered: Option<Value>,
}

impl Item {
    pub fn is_open(&self) -> bool {
        self.answered.is_none()
    }

    /// Applies one record about this item.
    fn apply(&mut self, v: &Value) {
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        if let Some(chain) = v.get("chain").and_then(Value::as_array) {
            self.chain = chain.clone();
        }
        match v.get("event").and_then(Value::as_str) {
            Some(record::MOVED) => {
                if let Some(to) = text("to") {
                    self.at = to;
                }
                if let Some(m) = v
                    .get("msg")
                    .and_then(|m| serde_json::from_value(m.clone()).ok())
                {
                    self.msg = m;
                }
                self.due = v.get("due").and_then(Value::as_u64).unwrap_or(0);
            }
            Some(record::ANSWERED) => {
                self.answered = Some(
                    json!({"by": v.get("by"), "how": v.get("how"), "note": v.get("note"), "ts": v.get("ts")}),
                );
            }
            _ => {}
        }
    }
}

/// Every item of the log, by id.
#[derive(Debug, Default, Clone)]
pub struct Items(pub BTreeMap<MsgId, Item>);

impl Items {
    /// Folds the log; a missing log is empty, a bad line is skipped.
    pub fn load(layout: &Layout) -> Result<Items, FormatError> {
        Items::load_upto(layout, None)
    }

    /// Folds the log's records that end at or before `limit` bytes: the
    /// state before a batch a crash interrupted, which the supervisor
    /// re-plans against it (so the re-plan decides as the first plan did).
    pub fn load_upto(layout: &Layout, limit: Option<u64>) -> Result<Items, FormatError> {
        let mut items = Items::default();
        let path = layout.supervisor_escalations();
        let mut cursor = 0;
        loop {
            let batch = read_lines(&path, cursor, 4 << 20)?;
            if batch.lines.is_empty() {
                return Ok(items);
            }
            for line in &batch.lines {
                if limit.is_some_and(|l| line.end > l) {
                    return Ok(items);
                }
                if let Ok(v) = serde_json::from_slice::<Value>(&line.bytes) {
                    items.apply(&v);
                }
            }
            cursor = batch.next;
        }
    }

    /// Applies one record of the log.
    pub fn apply(&mut self, v: &Value) {
        let Some(id) = v
            .get("item")
            .and_then(|i| serde_json::from_value::<MsgId>(i.clone()).ok())
        else {
            return;
        };
        if v.get("event").and_then(Value::as_str) == Some(record::OPENED) {
            if self.0.contains_key(&id) {
                return;
            }
            let Some(request) = v
                .get("request")
                .and_then(|r| serde_json::from_value::<Envelope>(r.clone()).ok())
            else {
                return;
            };
            let msg = v
                .get("msg")
                .and_then(|m| serde_json::from_value(m.clone()).ok())
                .unwrap_or(id);
            let item = Item {
                item: id,
                kind: v
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or(ESCALATION)
                    .into(),
                at: v
                    .get("at")
                    .and_then(Value::as_str)
                    .unwrap_or(society_core::org::ORCHESTRATOR)
                    .into(),
                msg,
                due: v.get("due").and_then(Value::as_u64).unwrap_or(0),
                chain: v
                    .get("chain")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
                parties: v
                    .get("parties")
                    .and_then(|p| serde_json::from_value(p.clone()).ok())
                    .unwrap_or_default(),
                case: request.case.clone(),
                request,
                answered: None,
            };
            self.0.insert(id, item);
            return;
        }
        if let Some(item) = self.0.get_mut(&id) {
            item.apply(v);
        }
    }

    pub fn get(&self, id: &MsgId) -> Option<&Item> {
        self.0.get(id)
    }

    /// Open items, oldest first.
    pub fn open(&self) -> impl Iterator<Item = &Item> {
        self.0.values().filter(|i| i.is_open())
    }

    /// Approval requests answered by a lead.
    pub fn lead_decisions(&self) -> impl Iterator<Item = LeadDecision> + '_ {
        self.0.values().filter_map(|i| {
            let a = i.answered.as_ref()?;
            let by = a.get("by")?.as_str()?.to_string();
            let approved = match a.get("how")?.as_str()? {
                "approved" => true,
                "rejected" => false,
                _ => return None,
            };
            (i.kind == APPROVAL && by != society_core::org::ORCHESTRATOR).then(|| {
                let text = |k: &str| a.get(k).and_then(Value::as_str).map(str::to_string);
                LeadDecision {
                    request: i.item,
                    approved,
                    by,
                    note: text("note"),
                    ts: text("ts").unwrap_or_default(),
                }
            })
        })
    }
}

/// An approval request a lead answered.
#[derive(Debug, Clone)]
pub struct LeadDecision {
    pub request: MsgId,
    pub approved: bool,
    pub by: String,
    pub note: Option<String>,
    pub ts: String,
}

/// One chain entry.
pub fn node(node: &str, outcome: Option<&str>, reason: Option<&str>) -> Value {
    let mut v = json!({"node": node});
    if let Some(o) = outcome {
        v["outcome"] = json!(o);
    }
    if let Some(r) = reason {
        v["reason"] = json!(r);
    }
    v
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use society_core::Party;

    #[test]
    fn the_fold_follows_an_item_up_and_to_its_answer() {
        let req = Envelope::new(
            Party::Supervisor,
            Party::Orchestrator,
            "escalation",
            json!({}),
        );
        let id = req.id;
        let m2 = MsgId::derive(&id, 7);
        let mut items = Items::default();
        let opened = json!({"event": "opened", "item": id, "kind": "escalation", "at": "lead-a",
            "due": 10, "chain": [node("lead-a", None, None)], "parties": ["w1", "w2"], "request": req});
        items.apply(&opened);
        items.apply(&opened);
        assert_eq!(
            items.0.len(),
            1,
            "an opened record applied twice is one item"
        );
        assert_eq!(items.get(&id).unwrap().at, "lead-a");
        assert_eq!(items.get(&id).unwrap().msg, id);
        items.apply(
            &json!({"event": "moved", "item": id, "to": "orchestrator", "msg": m2,
            "chain": [node("lead-a", Some("timeout"), None), node("orchestrator", None, None)]}),
        );
        let it = items.get(&id).unwrap();
        assert_eq!((it.at.as_str(), it.msg, it.due), ("orchestrator", m2, 0));
        assert_eq!(it.chain.len(), 2);
        assert!(it.is_open());
        items.apply(
            &json!({"event": "answered", "item": id, "by": "orchestrator", "how": "handled"}),
        );
        assert!(!items.get(&id).unwrap().is_open());
        assert_eq!(items.open().count(), 0);
    }
}
