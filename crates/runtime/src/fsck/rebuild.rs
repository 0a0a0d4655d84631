//! Derivable state rebuilt from the logs: an agent's checkpoint (its inbox
//! cursor and recently handled ids) and the supervisor's (the router's
//! cursors). Used by `fsck --repair` when a checkpoint is corrupt or a cursor
//! no longer fits its file (an incident).
//!
//! The rule is the same for every cursor: it moves to the end of the longest
//! prefix of lines the files *prove* were consumed — an agent's handled or
//! dead-lettered messages (its activity log, its outputs in its outbox, its
//! dead letters), a router's delivered messages (the copy in each primary
//! destination, or the record of a refusal, a block, a hold). Everything
//! after is consumed again, and the ids already seen make that harmless.

use crate::supervisor::state::SupervisorCheckpoint;
use serde_json::Value;
use society_core::jsonl::{read_lines, read_objects};
use society_core::kinds::event;
use society_core::layout::names;
use society_core::state::{AgentCheckpoint, RECENT_IDS};
use society_core::{AgentId, Envelope, FormatError, Layout, MsgId};
use std::collections::HashSet;
use std::path::Path;

/// Output index of an agent's dead-letter report (see `agent/delivery.rs`).
const DEAD_LETTER_REPORT_INDEX: u32 = u32::MAX;
/// Index of the supervisor's `approval_response` to a `decide` request
/// (see `supervisor/plan.rs`).
const RESPONSE_INDEX: u32 = 0x7fff_0004;

/// Every envelope id in a file.
fn ids_in(path: &Path) -> Result<HashSet<MsgId>, FormatError> {
    let mut ids = HashSet::new();
    let mut cursor = 0;
    loop {
        let batch = read_lines(path, cursor, 4 << 20)?;
        if batch.lines.is_empty() {
            return Ok(ids);
        }
        for l in &batch.lines {
            if let Ok(env) = Envelope::parse(&l.bytes) {
                ids.insert(env.id);
            }
        }
        cursor = batch.next;
    }
}

/// Every envelope id in a file and its archived segments.
fn ids_in_all(layout: &Layout, path: &Path) -> Result<HashSet<MsgId>, FormatError> {
    let mut ids = ids_in(path)?;
    for seg in society_core::segments::list(layout, path)? {
        for line in society_core::segments::lines(&seg)? {
            if let Ok(env) = Envelope::parse(&line?) {
                ids.insert(env.id);
            }
        }
    }
    Ok(ids)
}

fn records(path: &Path) -> Result<Vec<Value>, FormatError> {
    Ok(read_objects(path, &mut 0)?)
}

/// An agent's checkpoint, rebuilt from its folder. Keeps the generation of
/// `old` if it is higher than any the activity log shows.
pub(crate) fn agent_checkpoint(
    layout: &Layout,
    id: &AgentId,
    old: Option<&AgentCheckpoint>,
) -> Result<AgentCheckpoint, FormatError> {
    let paths = layout.agent(id);
    let mut generation = old.map_or(0, |c| c.generation);
    let mut handled: HashSet<MsgId> = old
        .map(|c| c.recent.iter().copied().collect())
        .unwrap_or_default();
    // Offset → the id the dead letter names (none for a line that did not
    // parse): after a truncation, another message may start at an offset a
    // dead letter names, and must not pass for it.
    let mut dead: std::collections::HashMap<u64, Option<String>> = std::collections::HashMap::new();
    // The activity log's archived segments too: a message handled long ago
    // may sit right after the cursor of a file rotated since.
    let seg = society_core::segments::live_seq(layout, &paths.inbox())?;
    for rec in society_core::segments::read_objects_all(layout, &paths.activity())? {
        generation = generation.max(rec["gen"].as_u64().unwrap_or(0));
        let id = rec["id"].as_str().and_then(|s| s.parse::<MsgId>().ok());
        match rec["event"].as_str() {
            Some(event::MESSAGE_HANDLED | event::DUPLICATE_DROPPED) => handled.extend(id),
            Some(event::MESSAGE_DEAD_LETTERED) if rec["seg"].as_u64().unwrap_or(0) == seg => {
                if let Some(o) = rec["offset"].as_u64() {
                    dead.insert(o, rec["id"].as_str().map(str::to_string));
                }
            }
            _ => {}
        }
    }
    for rec in records(&paths.deadletter())? {
        if rec["event"] == event::DEAD_LETTERED
            && rec["file"] == names::INBOX
            && rec["seg"].as_u64().unwrap_or(0) == seg
        {
            if let Some(o) = rec["offset"].as_u64() {
                dead.insert(o, rec["id"].as_str().map(str::to_string));
            }
        }
    }
    let outputs = ids_in(&paths.outbox())?;
    let mut ckpt = AgentCheckpoint {
        generation,
        inbox_seg: seg,
        ..AgentCheckpoint::default()
    };
    let mut cursor = 0;
    'read: loop {
        let batch = read_lines(&paths.inbox(), cursor, 4 << 20)?;
        if batch.lines.is_empty() {
            break;
        }
        for line in &batch.lines {
            let parsed = Envelope::parse(&line.bytes).ok();
            let dead_here = dead
                .get(&line.offset)
                .is_some_and(|named| match (named, &parsed) {
                    (Some(named), Some(env)) => *named == env.id.to_string(),
                    (None, None) => true,
                    _ => false,
                });
            let consumed = match &parsed {
                Some(env) => {
                    let done = handled.contains(&env.id)
                        || outputs.contains(&MsgId::derive(&env.id, 0))
                        || outputs.contains(&MsgId::derive(&env.id, DEAD_LETTER_REPORT_INDEX))
                        || dead_here;
                    if done && !dead_here {
                        ckpt.remember(env.id);
                        ckpt.handled += 1;
                        ckpt.experience.note(env);
                    }
                    done
                }
                None => dead_here,
            };
            if !consumed {
                break 'read;
            }
            if dead_here {
                ckpt.dead_lettered += 1;
            }
            ckpt.inbox_offset = line.end;
        }
        cursor = batch.next;
    }
    while ckpt.recent.len() > RECENT_IDS {
        ckpt.recent.pop_front();
    }
    Ok(ckpt)
}

/// What the files show the router delivered or disposed of.
struct Routed {
    /// Ids present in some primary destination: an agent's inbox, the
    /// orchestrator's or the supervisor's inbox, a case log (`src` prefix).
    delivered: HashSet<String>,
    /// Record keys (`src`) of refusals, blocks, holds, undeliverables.
    disposed: HashSet<String>,
}

impl Routed {
    fn gather(layout: &Layout) -> Result<Routed, FormatError> {
        let mut delivered = HashSet::new();
        let mut disposed = HashSet::new();
        let mut inboxes = vec![layout.orchestrator_inbox(), layout.supervisor_inbox()];
        for id in layout.agent_ids()? {
            inboxes.push(layout.agent(&id).inbox());
            for rec in records(&layout.agent(&id).deadletter())? {
                if let Some(src) = rec["src"].as_str() {
                    disposed.insert(src.to_string());
                }
            }
        }
        for inbox in inboxes {
            delivered.extend(
                ids_in_all(layout, &inbox)?
                    .into_iter()
                    .map(|i| i.to_string()),
            );
        }
        let cases = std::fs::read_dir(layout.cases_dir())
            .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
            .unwrap_or_default();
        for log in cases
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        {
            for rec in records(log)? {
                if let Some(id) = rec["src"]
                    .as_str()
                    .and_then(|s| s.split('/').next())
                    .filter(|id| id.parse::<MsgId>().is_ok())
                {
                    delivered.insert(id.to_string());
                }
            }
        }
        for rec in society_core::segments::read_objects_all(layout, &layout.system_events())? {
            if let Some(src) = rec["src"].as_str() {
                disposed.insert(src.to_string());
                // `<message id>/<what>`: the message was disposed of.
                if let Some(id) = src
                    .split('/')
                    .next()
                    .filter(|id| id.parse::<MsgId>().is_ok())
                {
                    disposed.insert(id.to_string());
                }
            }
        }
        Ok(Routed {
            delivered,
            disposed,
        })
    }

    fn line_done(&self, owner: &str, seg: u64, offset: u64, bytes: &[u8]) -> bool {
        let at = crate::supervisor::position_key(owner, seg, offset);
        match Envelope::parse(bytes) {
            Ok(env) => {
                let id = env.id.to_string();
                self.delivered.contains(&id)
                    || self.disposed.contains(&id)
                    || self.disposed.contains(&at)
            }
            Err(_) => self.disposed.contains(&at),
        }
    }
}

/// The longest prefix of `path` whose lines `done` says were consumed.
fn proven_prefix(
    path: &Path,
    mut done: impl FnMut(u64, &[u8]) -> bool,
) -> Result<u64, FormatError> {
    let mut cursor = 0;
    let mut end = 0;
    loop {
        let batch = read_lines(path, cursor, 4 << 20)?;
        if batch.lines.is_empty() {
            return Ok(end);
        }
        for line in &batch.lines {
            if !done(line.offset, &line.bytes) {
                return Ok(end);
            }
            end = line.end;
        }
        cursor = batch.next;
    }
}

/// The router's cursor in `owner`'s outbox, from what the files show.
pub(crate) fn router_cursor(layout: &Layout, owner: &AgentId) -> Result<u64, FormatError> {
    let routed = Routed::gather(layout)?;
    let outbox = layout.agent(owner).outbox();
    let seg = society_core::segments::live_seq(layout, &outbox)?;
    proven_prefix(&outbox, |offset, bytes| {
        routed.line_done(owner.as_str(), seg, offset, bytes)
    })
}

/// The supervisor's checkpoint rebuilt from the logs: every outbox cursor
/// and its inbox cursor. Holds and failures (`agents`) are not in any log
/// and start afresh.
pub(crate) fn supervisor_checkpoint(layout: &Layout) -> Result<SupervisorCheckpoint, FormatError> {
    let routed = Routed::gather(layout)?;
    let mut ckpt = SupervisorCheckpoint::default();
    for id in layout.agent_ids()? {
        let outbox = layout.agent(&id).outbox();
        let seg = society_core::segments::live_seq(layout, &outbox)?;
        let cursor = proven_prefix(&outbox, |offset, bytes| {
            routed.line_done(id.as_str(), seg, offset, bytes)
        })?;
        if seg > 0 {
            ckpt.segs.insert(id.clone(), seg);
        }
        ckpt.cursors.insert(id, cursor);
    }
    ckpt.inbox_seg = society_core::segments::live_seq(layout, &layout.supervisor_inbox())?;
    // A request left a record keyed by its id (a case event, a rejection,
    // an answer, an escalation), or the `control` line of the supervisor's
    // activity; a bad line was dead-lettered.
    let mut handled: HashSet<String> = routed.delivered.clone();
    handled.extend(routed.disposed.iter().cloned());
    // (The `control` line of the supervisor's activity is written while a
    // batch is planned, not once it landed: no proof.)
    let mut orch_sources = HashSet::new();
    for rec in society_core::segments::read_objects_all(layout, &layout.orchestrator_inbox())? {
        if let Some(src) = rec["body"]["source"].as_str() {
            orch_sources.insert(src.to_string());
        }
    }
    let bad: HashSet<u64> = records(&layout.supervisor_deadletter())?
        .iter()
        .filter(|r| r["seg"].as_u64().unwrap_or(0) == ckpt.inbox_seg)
        .filter_map(|r| r["offset"].as_u64())
        .collect();
    ckpt.inbox_offset =
        proven_prefix(
            &layout.supervisor_inbox(),
            |offset, bytes| match Envelope::parse(bytes) {
                Ok(env) => {
                    let id = env.id.to_string();
                    // An answer leaves its response in the agent's inbox; a
                    // reflection, the message's record in its case log.
                    let response = MsgId::derive(&env.id, RESPONSE_INDEX).to_string();
                    let reflected = env.body["message"]["id"].as_str().map(str::to_string);
                    handled.contains(&id)
                        || orch_sources.contains(&id)
                        || handled.contains(&response)
                        || reflected.is_some_and(|m| handled.contains(&m))
                }
                Err(_) => bad.contains(&offset),
            },
        )?;
    Ok(ckpt)
}
