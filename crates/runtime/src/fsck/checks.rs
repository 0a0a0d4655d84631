//! Cursors against their files, and case logs against approvals.

use super::files::Scan;
use super::Report;
use crate::supervisor::state::SupervisorCheckpoint;
use society_core::jsonl::read_lines;
use society_core::state::AgentCheckpoint;
use society_core::{atomic, Envelope, FormatError, Layout};
use std::path::Path;

/// A cursor must lie inside the complete part of its file, on a line start.
fn check_cursor(scan: &Scan, report: &mut Report, file: &Path, cursor: u64, what: &str) {
    let len = scan.complete_len.get(file).copied().unwrap_or(0);
    if cursor > len {
        report.problem(
            "cursor",
            Some(file.into()),
            Some(cursor),
            format!("{what} is past the end of the file's complete lines ({len} bytes)"),
        );
        return;
    }
    let on_boundary = cursor == len
        || scan
            .line_starts
            .get(file)
            .is_some_and(|s| s.contains(&cursor));
    if !on_boundary {
        report.problem(
            "cursor",
            Some(file.into()),
            Some(cursor),
            format!("{what} is not on a line boundary"),
        );
    }
}

pub(super) fn cursors(
    layout: &Layout,
    scan: &Scan,
    report: &mut Report,
) -> Result<(), FormatError> {
    for id in layout.agent_ids()? {
        let paths = layout.agent(&id);
        let ckpt_path = paths.checkpoint();
        let ckpt: AgentCheckpoint = match atomic::read_json(&ckpt_path, "agent checkpoint") {
            Ok(Some(c)) => c,
            Ok(None) => continue,
            Err(e) => {
                report.problem("checkpoint", Some(ckpt_path), None, e.to_string());
                continue;
            }
        };
        check_cursor(
            scan,
            report,
            &paths.inbox(),
            ckpt.inbox_offset,
            &format!("agent {id}'s inbox_offset"),
        );
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
    }
    let sup_path = layout.supervisor_checkpoint();
    let sup: SupervisorCheckpoint = match atomic::read_json(&sup_path, "supervisor checkpoint") {
        Ok(c) => c.unwrap_or_default(),
        Err(e) => {
            report.problem("checkpoint", Some(sup_path), None, e.to_string());
            return Ok(());
        }
    };
    for (id, cursor) in &sup.cursors {
        check_cursor(
            scan,
            report,
            &layout.agent(id).outbox(),
            *cursor,
            &format!("the router's cursor in {id}'s outbox"),
        );
    }
    check_cursor(
        scan,
        report,
        &layout.supervisor_inbox(),
        sup.inbox_offset,
        "the supervisor's inbox cursor",
    );
    if let Some(p) = &sup.pending {
        report.note(
            "cursor",
            Some(sup_path),
            Some(p.from),
            "a write-ahead batch is pending; the supervisor finishes it when it starts".into(),
        );
    }
    Ok(())
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
        if path.extension().is_none_or(|e| e != "jsonl") {
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
                    Some("approval_requested") => asked.push((request, line.offset)),
                    Some("approved" | "rejected") => {
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
                .is_some_and(|c| path.ends_with(format!("case-{c}.jsonl")));
            if in_case && decided && !answered.contains(&r.id.to_string()) {
                report.note("approval", Some(path.clone()), None, format!("request {} is answered; its case event appears once the supervisor processes the answer", r.id));
            }
        }
    }
    Ok(())
}
