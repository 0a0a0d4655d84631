//! State files and cursors against their files (rebuilt from the logs by
//! `--repair`), and case logs against approvals.

use super::files::Scan;
use super::{rebuild, Report};
use crate::supervisor::state::SupervisorCheckpoint;
use society_core::jsonl::read_lines;
use society_core::kinds::{case_log, event};
use society_core::lock::{self, HeldLock, LockError, LockState};
use society_core::state::{AgentCheckpoint, AgentConfig};
use society_core::{atomic, AgentId, Envelope, FormatError, Layout};
use std::path::Path;

pub(super) fn cursors(
    layout: &Layout,
    scan: &Scan,
    repair: bool,
    report: &mut Report,
) -> Result<(), FormatError> {
    for id in layout.agent_ids()? {
        // A folder with a symbolic link among its files is reported by the
        // `symlink` check, and never repaired through the link.
        if society_core::confine::check_folder(&layout.agent(&id)).is_err() {
            continue;
        }
        agent_state(layout, &id, scan, repair, report)?;
    }
    for path in layout.agent_entries_not_folders()? {
        report.problem(
            "agent_folder",
            Some(path),
            None,
            "named like an agent's folder but not a folder: that agent cannot run \
             (put its folder back, or move the entry away)"
                .into(),
        );
    }
    supervisor_state(layout, scan, repair, report)?;
    outbound(layout, scan, report);
    Ok(())
}

/// `supervisor/outbound.jsonl` and the federation bridge's cursor in
/// `supervisor/federation.json`: the cursor fits the file, and every line
/// is for another society, from this one. Not repaired: a cursor past the
/// end stops the bridge (it says so) until a person looks.
fn outbound(layout: &Layout, scan: &Scan, report: &mut Report) {
    let path = layout.federation_outbound();
    if !path.exists() {
        return;
    }
    let state_path = layout.federation_state();
    let cursor = match crate::federation::LinkState::load(layout) {
        Ok(s) => s.map_or(0, |s| s.live_cursor(layout)),
        Err(e) => {
            report.problem(
                "cursor",
                Some(state_path),
                None,
                format!("{e}; the bridge publishes outbound.jsonl again from its start (the stream and the receivers drop what they have by id)"),
            );
            return;
        }
    };
    if let Some(why) = cursor_problem(scan, &path, cursor) {
        report.problem(
            "cursor",
            Some(state_path),
            None,
            format!("the federation bridge's cursor in outbound.jsonl {why}"),
        );
    }
    let own = crate::config::SocietyConfig::load(&layout.society_toml())
        .ok()
        .and_then(|c| c.society.name);
    let mut at = 0;
    while let Ok(batch) = society_core::jsonl::read_lines(&path, at, 4 << 20) {
        let Some(last) = batch.lines.last() else {
            break;
        };
        at = last.end;
        for line in &batch.lines {
            let Ok(env) = society_core::Envelope::parse(&line.bytes) else {
                continue; // reported by the envelope check
            };
            let wrong = match env.to.society() {
                None => Some(format!(
                    "message {} is for {}, in this society",
                    env.id, env.to
                )),
                Some(s) if Some(s) == own.as_ref() => Some(format!(
                    "message {} is for {}: this society's own name",
                    env.id, env.to
                )),
                Some(_) if own.is_some() && env.from.society() != own.as_ref() => Some(format!(
                    "message {} is from {}, not from a party of this society",
                    env.id, env.from
                )),
                Some(_) => None,
            };
            if let Some(reason) = wrong {
                report.problem("outbound", Some(path.clone()), Some(line.offset), reason);
            }
        }
    }
}

/// An agent's `config.json` and `checkpoint.json`: readable, and the cursor
/// fits the inbox. Repairs rebuild them (a config from `society.toml`, a
/// checkpoint from the logs) while holding the agent's lock, so no process
/// of the agent runs meanwhile.
fn agent_state(
    layout: &Layout,
    id: &AgentId,
    scan: &Scan,
    repair: bool,
    report: &mut Report,
) -> Result<(), FormatError> {
    let paths = layout.agent(id);
    if let Err(e) = atomic::read_json::<AgentConfig>(&paths.config(), "agent config") {
        let f = report.problem("config", Some(paths.config()), None, e.to_string());
        if repair {
            f.repaired = repair_config(layout, id).ok().flatten();
            if f.repaired.is_none() {
                f.reason.push_str(&format!(
                    "; agent {id} is not declared in society.toml: re-create it with `society spawn ROLE --id {id}`"
                ));
            }
        }
    }
    let ckpt_path = paths.checkpoint();
    let (ckpt, trouble) = match AgentCheckpoint::read(&paths) {
        Ok(None) => return Ok(()),
        Ok(Some(c)) => {
            let trouble = match &c.incident {
                Some(i) => Some(format!(
                    "agent {id} stopped consuming its inbox: {}",
                    i.describe()
                )),
                None => cursor_problem(
                    scan,
                    &paths.inbox(),
                    in_live(layout, &paths.inbox(), c.inbox_seg, c.inbox_offset),
                )
                .map(|why| format!("agent {id}'s inbox_offset {why}")),
            };
            (Some(c), trouble)
        }
        Err(e) => (None, Some(e.to_string())),
    };
    if let Some(reason) = trouble {
        let f = report.problem("checkpoint", Some(ckpt_path.clone()), None, reason);
        if repair {
            match rebuild_agent(layout, id, ckpt.as_ref()) {
                Ok(done) => f.repaired = Some(done),
                Err(why) => f.reason.push_str(&format!("; not repaired: {why}")),
            }
        }
        return Ok(());
    }
    let Some(ckpt) = ckpt else { return Ok(()) };
    if let Some(f) = &ckpt.in_flight {
        let batch = read_lines(&paths.inbox(), f.offset, 1 << 20)?;
        let found = batch
            .lines
            .first()
            .filter(|l| l.offset == f.offset)
            .and_then(|l| Envelope::parse(&l.bytes).ok());
        match found {
            Some(env) if env.id == f.id => {}
            Some(env) => {
                report.problem(
                    "in_flight",
                    Some(paths.inbox()),
                    Some(f.offset),
                    format!(
                        "in-flight message {} of agent {id} is not at its offset (found {})",
                        f.id, env.id
                    ),
                );
            }
            None => {
                report.problem(
                    "in_flight",
                    Some(paths.inbox()),
                    Some(f.offset),
                    format!(
                        "in-flight message {} of agent {id} does not exist at its offset",
                        f.id
                    ),
                );
            }
        }
        if f.offset != ckpt.inbox_offset {
            report.problem(
                "in_flight",
                Some(ckpt_path.clone()),
                Some(f.offset),
                format!(
                    "agent {id}: in-flight offset {} differs from inbox_offset {}",
                    f.offset, ckpt.inbox_offset
                ),
            );
        }
    }
    Ok(())
}

/// Rebuilds an agent's checkpoint from its logs, holding its lock.
fn rebuild_agent(
    layout: &Layout,
    id: &AgentId,
    old: Option<&AgentCheckpoint>,
) -> Result<String, String> {
    let paths = layout.agent(id);
    let _held = match HeldLock::try_acquire(&paths.lock()) {
        Ok(l) => l,
        Err(LockError::Held { .. }) => {
            return Err(format!("agent {id} is running: `society stop {id}` first"))
        }
        Err(e) => return Err(e.to_string()),
    };
    let ckpt = rebuild::agent_checkpoint(layout, id, old).map_err(|e| e.to_string())?;
    ckpt.write_durable(&paths).map_err(|e| e.to_string())?;
    Ok(format!(
        "rebuilt the checkpoint from the activity log, outbox and dead letters: cursor at byte {} ({} handled, {} dead-lettered); what follows is handled again, ids already seen are dropped",
        ckpt.inbox_offset, ckpt.handled, ckpt.dead_lettered
    ))
}

/// A config rebuilt from `society.toml` if the agent is declared there,
/// else from its `created` record in `registry.jsonl` (role and brain kind)
/// and the role's template, as `society spawn` made it.
fn repair_config(layout: &Layout, id: &AgentId) -> Result<Option<String>, FormatError> {
    let toml = layout.society_toml();
    let Ok(config) = crate::config::SocietyConfig::load(&toml) else {
        return Ok(None);
    };
    if let Some(cfg) = config
        .declared(&toml)
        .ok()
        .and_then(|d| d.into_iter().find(|c| c.id == *id))
    {
        atomic::write_json(&layout.agent(id).config(), &cfg, true)?;
        return Ok(Some(
            "rewrote config.json from its [[agent]] in society.toml".into(),
        ));
    }
    let created = society_core::jsonl::read_objects(&layout.registry(), &mut 0)?
        .into_iter()
        .rev()
        .find(|r| r["event"] == event::CREATED && r["agent"] == id.as_str());
    let Some(rec) = created else { return Ok(None) };
    let Some(role) = rec["role"].as_str() else {
        return Ok(None);
    };
    let kind = rec["brain"].as_str().map(str::to_string);
    let template_kind = config
        .roles
        .get(role)
        .and_then(|r| r.brain.as_ref())
        .and_then(|b| {
            b.get("kind")
                .or(Some(b))
                .and_then(|k| k.as_str())
                .map(str::to_string)
        });
    // The template's brain when it is the kind the agent was made with.
    let brain = match (&kind, &template_kind) {
        (Some(k), Some(t)) if k == t => None,
        (Some(k), _) => Some(serde_json::json!({ "kind": k })),
        (None, _) => None,
    };
    let Ok(cfg) = config.for_spawn(&toml, id.as_str(), role, brain, false) else {
        return Ok(None);
    };
    atomic::write_json(&layout.agent(id).config(), &cfg, true)?;
    Ok(Some(format!(
        "rewrote config.json as `society spawn {role} --id {id}` makes it (role and brain kind from registry.jsonl); check keep_alive and brain settings"
    )))
}

/// The supervisor's checkpoint: readable, cursors inside their files, no
/// incident. Repairs need the supervisor stopped (it rewrites the file).
fn supervisor_state(
    layout: &Layout,
    scan: &Scan,
    repair: bool,
    report: &mut Report,
) -> Result<(), FormatError> {
    let sup_path = layout.supervisor_checkpoint();
    let running = matches!(lock::probe(&layout.supervisor_lock())?, LockState::Held(_));
    let sup: SupervisorCheckpoint = match atomic::read_json(&sup_path, "supervisor checkpoint") {
        Ok(c) => c.unwrap_or_default(),
        Err(e) => {
            let f = report.problem("checkpoint", Some(sup_path.clone()), None, e.to_string());
            if repair {
                if running {
                    f.reason
                        .push_str("; the supervisor runs: `society down` first");
                } else {
                    let ckpt = rebuild::supervisor_checkpoint(layout)?;
                    atomic::write_json(&sup_path, &ckpt, true)?;
                    f.repaired = Some(format!(
                        "rebuilt from what the files show was routed ({} outbox cursors, inbox cursor at byte {}); holds and failed states start afresh",
                        ckpt.cursors.len(),
                        ckpt.inbox_offset
                    ));
                }
            }
            return Ok(());
        }
    };
    let mut fixes: Vec<(Option<AgentId>, String)> = Vec::new();
    for (key, i) in &sup.incidents {
        fixes.push((
            AgentId::new(key.as_str())
                .ok()
                .filter(|_| key != "supervisor"),
            format!(
                "the router stopped reading {}: {}",
                i.file.display(),
                i.describe()
            ),
        ));
    }
    for (id, cursor) in &sup.cursors {
        // An outbox that is a link is never read: its cursor is not judged
        // against it (the `symlink` check reports the link).
        if sup.incidents.contains_key(id.as_str())
            || society_core::confine::check_folder(&layout.agent(id)).is_err()
        {
            continue;
        }
        let seg = sup.segs.get(id).copied().unwrap_or(0);
        let outbox = layout.agent(id).outbox();
        if let Some(why) = cursor_problem(scan, &outbox, in_live(layout, &outbox, seg, *cursor)) {
            fixes.push((
                Some(id.clone()),
                format!("the router's cursor in {id}'s outbox {why}"),
            ));
        }
    }
    if !sup.incidents.contains_key("supervisor")
        && society_core::confine::check(&layout.supervisor_inbox()).is_ok()
    {
        let inbox = layout.supervisor_inbox();
        let cursor = in_live(layout, &inbox, sup.inbox_seg, sup.inbox_offset);
        if let Some(why) = cursor_problem(scan, &inbox, cursor) {
            fixes.push((None, format!("the supervisor's inbox cursor {why}")));
        }
    }
    if fixes.is_empty() {
        if let Some(p) = &sup.pending {
            report.note(
                "cursor",
                Some(sup_path),
                Some(p.from),
                "a write-ahead batch is pending; the supervisor finishes it when it starts".into(),
            );
        }
        return Ok(());
    }
    let mut fixed = sup.clone();
    for (who, reason) in fixes {
        let f = report.problem("cursor", Some(sup_path.clone()), None, reason);
        if !repair {
            continue;
        }
        if running {
            f.reason
                .push_str("; the supervisor runs: `society down` first");
            continue;
        }
        let (key, cursor) = match &who {
            Some(id) => {
                let c = rebuild::router_cursor(layout, id)?;
                fixed.cursors.insert(id.clone(), c);
                (id.to_string(), c)
            }
            None => {
                let c = rebuild::supervisor_checkpoint(layout)?.inbox_offset;
                fixed.inbox_offset = c;
                ("supervisor".to_string(), c)
            }
        };
        fixed.incidents.remove(&key);
        f.repaired = Some(format!(
            "moved the cursor to byte {cursor}, the end of what the destinations show was routed"
        ));
    }
    if fixed != sup {
        atomic::write_json(&sup_path, &fixed, true)?;
    }
    Ok(())
}

/// A cursor in the live file's terms: one left in a segment that has been
/// rotated since (a crash before its consumer recorded the rotation) is at 0
/// of the live file — which is where the consumer resumes.
fn in_live(layout: &Layout, file: &Path, seg: u64, cursor: u64) -> u64 {
    match society_core::segments::live_seq(layout, file) {
        Ok(live) if live > seg => 0,
        _ => cursor,
    }
}

/// Why a cursor does not fit its file, if it does not.
fn cursor_problem(scan: &Scan, file: &Path, cursor: u64) -> Option<String> {
    let len = scan.complete_len.get(file).copied().unwrap_or(0);
    if cursor > len {
        return Some(format!(
            "({cursor}) is past the end of the file's complete lines ({len} bytes)"
        ));
    }
    let on_boundary = cursor == len
        || scan
            .line_starts
            .get(file)
            .is_some_and(|s| s.contains(&cursor));
    (!on_boundary).then(|| format!("({cursor}) is not on a line boundary"))
}

/// Every `approval_requested` case event matches a request the orchestrator
/// received, and every answered request is in its case log.
pub(super) fn approvals(layout: &Layout, report: &mut Report) -> Result<(), FormatError> {
    let requests = crate::approvals::requests(layout)?;
    let decisions = crate::approvals::decisions(layout)?;
    let known: std::collections::HashMap<String, &crate::approvals::Approval> =
        requests.iter().map(|r| (r.id.to_string(), r)).collect();
    let Ok(entries) = std::fs::read_dir(layout.cases_dir()) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        // A link is never read (the `symlink` check reports it).
        if path.extension().is_none_or(|e| e != "jsonl")
            || entry.file_type().is_ok_and(|t| t.is_symlink())
        {
            continue;
        }
        let mut cursor = 0;
        let mut answered = std::collections::HashSet::new();
        let mut asked = Vec::new();
        loop {
            let batch = read_lines(&path, cursor, 4 << 20)?;
            if batch.lines.is_empty() {
                break;
            }
            for line in &batch.lines {
                let Ok(v) = serde_json::from_slice::<serde_json::Value>(&line.bytes) else {
                    continue;
                };
                let request = v["request"].as_str().unwrap_or_default().to_string();
                match v["event"].as_str() {
                    Some(case_log::APPROVAL_REQUESTED) => asked.push((request, line.offset)),
                    Some(case_log::APPROVED | case_log::REJECTED) => {
                        answered.insert(request);
                    }
                    _ => {}
                }
            }
            cursor = batch.next;
        }
        for (request, offset) in asked {
            if !known.contains_key(&request) {
                report.problem("approval", Some(path.clone()), Some(offset), format!("approval_requested names request {request}, which the orchestrator's inbox does not hold"));
            }
        }
        for r in &requests {
            let decided = decisions.keys().any(|d| d.to_string() == r.id.to_string());
            let in_case = r
                .case
                .as_ref()
                .is_some_and(|c| path.ends_with(society_core::layout::case_log_name(c)));
            if in_case && decided && !answered.contains(&r.id.to_string()) {
                report.note("approval", Some(path.clone()), None, format!("request {} is answered; its case event appears once the supervisor processes the answer", r.id));
            }
        }
    }
    Ok(())
}
