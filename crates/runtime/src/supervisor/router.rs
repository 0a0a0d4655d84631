//! The router: tails every `outbox.jsonl` from its own cursor, validates each
//! envelope, appends it to the recipient's inbox, the mirror and the case log,
//! and only then advances the cursor. A batch is written ahead (its source
//! range and the length of every destination) so a crash mid-batch is repaired
//! without loss or duplicates on the next start.

use super::state::PendingBatch;
use super::{file_len, Supervisor};
use crate::activity;
use serde_json::{json, Value};
use society_core::jsonl::{read_lines, Appender, Durability, Line};
use society_core::{AgentId, Envelope, FormatError, Party};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

/// Most outbox bytes routed in one batch.
const BATCH_BYTES: usize = 1 << 20;

/// One record to append somewhere, with the key that identifies it there.
struct Delivery {
    dest: PathBuf,
    durable: bool,
    key: String,
    record: Vec<u8>,
}

impl Supervisor {
    pub(super) fn route_all(&mut self) {
        let ids: Vec<AgentId> = self.slots.keys().cloned().collect();
        for id in ids {
            let cursor = self.ckpt.cursors.get(&id).copied().unwrap_or(0);
            if file_len(&self.slots[&id].paths.outbox()) > cursor {
                self.route(&id);
            }
        }
    }

    /// Routes everything complete in `owner`'s outbox.
    pub(super) fn route(&mut self, owner: &AgentId) {
        loop {
            match self.route_batch(owner, None, None) {
                Ok(true) => continue,
                Ok(false) => return,
                Err(e) => {
                    tracing::error!(agent = %owner, error = %e, "routing failed; will retry on the next scan");
                    return;
                }
            }
        }
    }

    /// Finishes a batch interrupted by a crash, skipping what already landed.
    pub(super) fn recover_pending(&mut self) -> Result<(), FormatError> {
        let Some(batch) = self.ckpt.pending.clone() else {
            return Ok(());
        };
        if !self.slots.contains_key(&batch.agent) {
            self.ckpt.pending = None;
            return Ok(());
        }
        self.activity.event(
            "router_recovery",
            json!({"agent": batch.agent, "from": batch.from, "to": batch.to}),
        );
        self.ckpt.cursors.insert(batch.agent.clone(), batch.from);
        self.route_batch(&batch.agent, Some(batch.to), Some(&batch.sizes))?;
        Ok(())
    }

    /// Routes one batch; returns whether it routed anything.
    fn route_batch(
        &mut self,
        owner: &AgentId,
        limit: Option<u64>,
        recovered_sizes: Option<&BTreeMap<PathBuf, u64>>,
    ) -> Result<bool, FormatError> {
        let outbox = self.slots[owner].paths.outbox();
        let from = self.ckpt.cursors.get(owner).copied().unwrap_or(0);
        let mut batch = read_lines(&outbox, from, BATCH_BYTES)?;
        if let Some(limit) = limit {
            batch.lines.retain(|l| l.end <= limit);
            batch.next = batch.lines.last().map_or(from, |l| l.end);
        }
        if batch.lines.is_empty() {
            return Ok(false);
        }
        let (deliveries, wake) = self.plan(owner, &batch.lines);
        let mut sizes = BTreeMap::new();
        for d in &deliveries {
            sizes
                .entry(d.dest.clone())
                .or_insert_with(|| file_len(&d.dest));
        }
        let skip = match recovered_sizes {
            Some(old) => present_keys(old)?,
            None => HashSet::new(),
        };
        self.ckpt.pending = Some(PendingBatch {
            agent: owner.clone(),
            from,
            to: batch.next,
            sizes: recovered_sizes.cloned().unwrap_or(sizes),
        });
        self.save_checkpoint();
        let mut by_dest: BTreeMap<PathBuf, (bool, Vec<Vec<u8>>)> = BTreeMap::new();
        for d in deliveries {
            if skip.contains(&(d.dest.clone(), d.key.clone())) {
                continue;
            }
            by_dest
                .entry(d.dest)
                .or_insert_with(|| (d.durable, Vec::new()))
                .1
                .push(d.record);
        }
        for (dest, (durable, records)) in by_dest {
            let class = if durable {
                self.router_durability
            } else {
                Durability::Flushed
            };
            Appender::open(&dest, class, usize::MAX)?.append_batch(&records)?;
        }
        self.ckpt.cursors.insert(owner.clone(), batch.next);
        self.ckpt.pending = None;
        self.save_checkpoint();
        for id in wake {
            self.wake(&id);
        }
        Ok(true)
    }

    /// Decides where each line goes. Pure with respect to the files: the same
    /// lines and agents give the same plan, which recovery relies on.
    fn plan(&self, owner: &AgentId, lines: &[Line]) -> (Vec<Delivery>, Vec<AgentId>) {
        let mut out = Vec::new();
        let mut wake = Vec::new();
        let mirror = self.layout.agent_to_agent();
        for line in lines {
            let env = match Envelope::parse(&line.bytes) {
                Ok(env) if env.from == Party::Agent(owner.clone()) => env,
                Ok(env) => {
                    let reason = format!(
                        "from {:?} does not match the outbox owner {owner}",
                        env.from.to_string()
                    );
                    self.undeliverable(owner, line, Some(&env), &reason, &mut out);
                    continue;
                }
                Err(e) => {
                    self.undeliverable(owner, line, None, &e.to_string(), &mut out);
                    continue;
                }
            };
            let key = env.id.to_string();
            let dest = match &env.to {
                Party::Agent(id) if self.slots.contains_key(id) => {
                    wake.push(id.clone());
                    Some(self.slots[id].paths.inbox())
                }
                Party::Agent(id) => {
                    self.undeliverable(
                        owner,
                        line,
                        Some(&env),
                        &format!("no agent {id}"),
                        &mut out,
                    );
                    continue;
                }
                Party::Role(role) => match self.pick_role(role, &env) {
                    Some(id) => {
                        wake.push(id.clone());
                        Some(self.slots[&id].paths.inbox())
                    }
                    None => {
                        self.undeliverable(
                            owner,
                            line,
                            Some(&env),
                            &format!("no agent has role {role}"),
                            &mut out,
                        );
                        continue;
                    }
                },
                Party::Orchestrator => Some(self.layout.orchestrator_inbox()),
                Party::Supervisor if env.kind == "case_event" => None,
                Party::Supervisor => Some(self.layout.supervisor_inbox()),
            };
            if env.kind == "case_event" && env.case.is_none() {
                self.undeliverable(
                    owner,
                    line,
                    Some(&env),
                    "case_event without a case",
                    &mut out,
                );
                continue;
            }
            if let Some(dest) = dest {
                out.push(Delivery {
                    dest,
                    durable: true,
                    key: key.clone(),
                    record: line.bytes.clone(),
                });
            }
            out.push(Delivery {
                dest: mirror.clone(),
                durable: false,
                key: key.clone(),
                record: line.bytes.clone(),
            });
            if let Some(case) = &env.case {
                out.push(Delivery {
                    dest: self.layout.case_log(case),
                    durable: true,
                    key,
                    record: case_record(&env),
                });
            }
        }
        (out, wake)
    }

    fn pick_role(&self, role: &str, env: &Envelope) -> Option<AgentId> {
        let candidates: Vec<&AgentId> = self
            .slots
            .iter()
            .filter(|(_, s)| s.cfg.role == role)
            .map(|(id, _)| id)
            .collect();
        crate::roles::pick(&candidates, env).cloned()
    }

    fn undeliverable(
        &self,
        owner: &AgentId,
        line: &Line,
        env: Option<&Envelope>,
        reason: &str,
        out: &mut Vec<Delivery>,
    ) {
        let src = format!("{owner}@{}", line.offset);
        let fields = json!({
            "src": src, "file": "outbox.jsonl", "offset": line.offset, "id": env.map(|e| e.id),
            "to": env.map(|e| e.to.to_string()), "reason": reason,
            "line": String::from_utf8_lossy(&line.bytes[..line.bytes.len().min(64 * 1024)]),
        });
        out.push(Delivery {
            dest: self.slots[owner].paths.deadletter(),
            durable: true,
            key: src.clone(),
            record: activity::record(
                "undeliverable",
                owner.as_str(),
                env.map_or(0, |e| e.gen),
                fields.clone(),
            ),
        });
        let mut event = fields;
        if let Some(obj) = event.as_object_mut() {
            obj.remove("line");
        }
        out.push(Delivery {
            dest: self.layout.system_events(),
            durable: false,
            key: src,
            record: activity::record(
                "undeliverable",
                owner.as_str(),
                env.map_or(0, |e| e.gen),
                event,
            ),
        });
    }
}

/// The line a message leaves in its case log.
fn case_record(env: &Envelope) -> Vec<u8> {
    let agent = env.from.to_string();
    let mut fields =
        json!({"case": env.case, "id": env.id, "from": env.from, "to": env.to, "type": env.kind});
    let event = if env.kind == "case_event" {
        if let (Some(f), Some(body)) = (fields.as_object_mut(), env.body.as_object()) {
            for (k, v) in body {
                if k != "event" {
                    f.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        env.body
            .get("event")
            .and_then(Value::as_str)
            .unwrap_or("case_event")
            .to_string()
    } else {
        "message".to_string()
    };
    activity::record(&event, &agent, env.gen, fields)
}

/// `(dest, key)` of every record appended to each destination after the
/// recorded length: what an interrupted batch already delivered.
fn present_keys(sizes: &BTreeMap<PathBuf, u64>) -> Result<HashSet<(PathBuf, String)>, FormatError> {
    let mut present = HashSet::new();
    for (dest, &size) in sizes {
        let mut cursor = size;
        loop {
            let batch = read_lines(dest, cursor, BATCH_BYTES)?;
            if batch.lines.is_empty() {
                break;
            }
            for line in &batch.lines {
                if let Ok(v) = serde_json::from_slice::<Value>(&line.bytes) {
                    let key = v.get("src").or_else(|| v.get("id")).and_then(Value::as_str);
                    if let Some(k) = key {
                        present.insert((dest.clone(), k.to_string()));
                    }
                }
            }
            cursor = batch.next;
        }
    }
    Ok(present)
}
