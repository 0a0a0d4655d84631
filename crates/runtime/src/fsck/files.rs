//! Every JSONL file: lines parse, envelopes validate, tails are whole.

use super::Report;
use society_core::jsonl::{read_lines, Appender, Durability};
use society_core::layout::names;
use society_core::{Envelope, FormatError, IoError, Layout};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// What the scan learnt, for the cursor checks.
#[derive(Default)]
pub(super) struct Scan {
    /// Start offset of every complete line, per file.
    pub line_starts: HashMap<PathBuf, HashSet<u64>>,
    /// Length of the complete part of each file.
    pub complete_len: HashMap<PathBuf, u64>,
}

/// Files whose lines are message envelopes.
fn holds_envelopes(layout: &Layout, path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    (matches!(name, names::INBOX | names::OUTBOX | names::AGENT_TO_AGENT)
        || *path == layout.federation_outbound())
        && !path.starts_with(layout.archive_dir())
}

pub(super) fn scan(
    layout: &Layout,
    repair: bool,
    report: &mut Report,
    progress: &mut dyn FnMut(super::Progress),
) -> Result<Scan, FormatError> {
    let mut files = Vec::new();
    collect(layout.state_dir(), &mut files)?;
    files.sort();
    progress(super::Progress::Files(files.len()));
    let quarantined = quarantined(layout, &files)?;
    let cursors = consumer_cursors(layout)?;
    let mut scan = Scan::default();
    for path in files {
        progress(super::Progress::File(&path));
        report.files += 1;
        let envelopes = holds_envelopes(layout, &path);
        let mut starts = HashSet::new();
        let mut keys: HashMap<String, u64> = HashMap::new();
        // Offsets restart in each segment: dead letters name the segment.
        let seg = society_core::segments::live_seq(layout, &path)?;
        let mut cursor = 0;
        loop {
            let batch = read_lines(&path, cursor, 4 << 20)?;
            for line in &batch.lines {
                report.lines += 1;
                starts.insert(line.offset);
                if let Some(key) = record_key(&line.bytes, envelopes) {
                    if let Some(first) = keys.insert(key.clone(), line.offset) {
                        duplicate(layout, report, &path, &key, first, line.offset);
                    }
                }
                let reason = if envelopes {
                    Envelope::parse(&line.bytes).err().map(|e| e.to_string())
                } else {
                    serde_json::from_slice::<serde_json::Value>(&line.bytes)
                        .err()
                        .map(|e| format!("not valid JSON: {e}"))
                        .or_else(|| {
                            (!line.bytes.starts_with(b"{")).then(|| "not a JSON object".to_string())
                        })
                };
                if let Some(reason) = reason {
                    if quarantined.contains(&(path.clone(), seg, line.offset)) {
                        report.note(
                            "jsonl",
                            Some(path.clone()),
                            Some(line.offset),
                            format!("{reason} (already dead-lettered)"),
                        );
                    } else if cursors
                        .get(&path)
                        .is_some_and(|c| c.is_none_or(|c| line.offset >= c))
                    {
                        // Not read yet (or its cursor is being repaired):
                        // its consumer dead-letters it when it gets there.
                        report.note(
                            "jsonl",
                            Some(path.clone()),
                            Some(line.offset),
                            format!("{reason} (not read yet: its consumer dead-letters it)"),
                        );
                    } else {
                        let check = if envelopes { "envelope" } else { "jsonl" };
                        let consumed = has_consumer(layout, &path);
                        let f = report.problem(
                            check,
                            Some(path.clone()),
                            Some(line.offset),
                            reason.clone(),
                        );
                        if repair && !consumed {
                            // Nobody reads this file by cursor, so nobody
                            // will dead-letter the line: fsck does, in the
                            // directory's deadletter.jsonl, and the line is
                            // then a handled one (never deleted).
                            match quarantine(&path, seg, line, &reason) {
                                Ok(dl) => {
                                    f.repaired = Some(format!(
                                        "quarantined in {} (the line stays where it is)",
                                        dl.display()
                                    ))
                                }
                                Err(e) => f
                                    .reason
                                    .push_str(&format!("; could not quarantine it: {e}")),
                            }
                        }
                    }
                }
            }
            if batch.lines.is_empty() {
                if batch.len > batch.next {
                    let torn = report.problem(
                        "torn_tail",
                        Some(path.clone()),
                        Some(batch.next),
                        format!("{} bytes after the last newline (a writer died mid-line, or is writing now)", batch.len - batch.next),
                    );
                    if repair {
                        // An empty append runs the writer's protocol: under
                        // the lock, end the fragment with a newline.
                        let mut a = Appender::open(
                            &path,
                            Durability::Durable,
                            society_core::DEFAULT_MAX_RECORD,
                        )?;
                        a.append_batch::<&[u8]>(&[])?;
                        let mut done =
                            "terminated the fragment with a newline; it is now one bad line"
                                .to_string();
                        if !has_consumer(layout, &path) {
                            let fragment = read_lines(&path, batch.next, 64 * 1024)?
                                .lines
                                .into_iter()
                                .next();
                            if let Some(line) = fragment.filter(|l| l.offset == batch.next) {
                                let dl = quarantine(
                                    &path,
                                    seg,
                                    &line,
                                    "a torn tail (a writer died mid-line)",
                                )?;
                                done.push_str(&format!(", quarantined in {}", dl.display()));
                            }
                        }
                        torn.repaired = Some(done);
                    }
                }
                scan.complete_len.insert(path.clone(), batch.next);
                break;
            }
            cursor = batch.next;
        }
        scan.line_starts.insert(path, starts);
    }
    Ok(scan)
}

/// The cursor of every file read by a consumer: `None` when it is unknown
/// or under repair (a corrupt checkpoint, an incident).
fn consumer_cursors(layout: &Layout) -> Result<HashMap<PathBuf, Option<u64>>, FormatError> {
    use crate::supervisor::state::SupervisorCheckpoint;
    use society_core::state::AgentCheckpoint;
    let mut out = HashMap::new();
    for id in layout.agent_ids()? {
        let paths = layout.agent(&id);
        let c = AgentCheckpoint::read(&paths).ok().flatten();
        let cursor = match c {
            Some(c) if c.incident.is_none() => Some(c.inbox_offset),
            Some(_) => None,
            None => None,
        };
        out.insert(paths.inbox(), cursor);
    }
    let sup = society_core::atomic::read_json::<SupervisorCheckpoint>(
        &layout.supervisor_checkpoint(),
        "supervisor checkpoint",
    );
    let sup = match sup {
        Ok(c) => Some(c.unwrap_or_default()),
        Err(_) => None,
    };
    for id in layout.agent_ids()? {
        let cursor = sup.as_ref().and_then(|s| {
            (!s.incidents.contains_key(id.as_str()))
                .then(|| s.cursors.get(&id).copied().unwrap_or(0))
        });
        out.insert(layout.agent(&id).outbox(), cursor);
    }
    let inbox_cursor = sup
        .as_ref()
        .and_then(|s| (!s.incidents.contains_key("supervisor")).then_some(s.inbox_offset));
    out.insert(layout.supervisor_inbox(), inbox_cursor);
    // The federation bridge's: bytes of outbound.jsonl the NATS server
    // acknowledged (unknown when its state file cannot be read).
    if layout.federation_outbound().exists() {
        let state = crate::federation::LinkState::load(layout);
        out.insert(
            layout.federation_outbound(),
            state.ok().map(|s| s.map_or(0, |s| s.live_cursor(layout))),
        );
    }
    Ok(out)
}

/// Is the file read by a consumer with a cursor, which dead-letters bad
/// lines itself (an agent's inbox, the router's outboxes, the supervisor's
/// inbox)?
fn has_consumer(layout: &Layout, path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let dir = path
        .parent()
        .and_then(|d| d.file_name())
        .and_then(|d| d.to_str())
        .unwrap_or("");
    (dir.starts_with(names::AGENT_DIR_PREFIX) && matches!(name, names::INBOX | names::OUTBOX))
        || *path == layout.supervisor_inbox()
}

/// Records a bad line as quarantined in its directory's `deadletter.jsonl`.
fn quarantine(
    path: &Path,
    seg: u64,
    line: &society_core::jsonl::Line,
    reason: &str,
) -> Result<PathBuf, FormatError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let dl = dir.join(names::DEADLETTER);
    let file = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let excerpt =
        String::from_utf8_lossy(&line.bytes[..line.bytes.len().min(64 * 1024)]).into_owned();
    let rec = crate::activity::record(
        "quarantined",
        "fsck",
        0,
        serde_json::json!({"src": format!("{file}@{seg}:{}", line.offset), "file": file, "seg": seg,
            "offset": line.offset, "reason": reason, "line": excerpt, "by": "fsck --repair"}),
    );
    Appender::open(&dl, Durability::Durable, society_core::DEFAULT_MAX_RECORD)?.append(&rec)?;
    Ok(dl)
}

/// What identifies a record in its file: a message's `id`, a log record's
/// `src` (the key the supervisor writes with, unique by construction).
/// Records without one (activity lines) are not checked.
fn record_key(bytes: &[u8], envelopes: bool) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    let key = if envelopes { v.get("id") } else { v.get("src") };
    key.and_then(serde_json::Value::as_str).map(str::to_string)
}

/// The same record twice in one file breaks "nothing duplicated" — except in
/// an agent's inbox, where a sender may repeat a write it could not confirm
/// and the agent handles the id once (`duplicate_dropped`).
fn duplicate(layout: &Layout, report: &mut Report, path: &Path, key: &str, first: u64, again: u64) {
    let in_agent_inbox = path.file_name().is_some_and(|n| n == names::INBOX)
        && path
            .parent()
            .and_then(|d| d.file_name())
            .and_then(|d| d.to_str())
            .is_some_and(|d| d.starts_with(names::AGENT_DIR_PREFIX))
        && path.starts_with(layout.state_dir());
    let reason = format!("duplicate record {key} (first at byte {first})");
    if in_agent_inbox {
        report.note(
            "duplicate",
            Some(path.to_path_buf()),
            Some(again),
            format!("{reason}; the agent handles an id once"),
        );
    } else {
        report.problem("duplicate", Some(path.to_path_buf()), Some(again), reason);
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), IoError> {
    let entries = std::fs::read_dir(dir).map_err(|e| IoError::new("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| IoError::new("list", dir, e))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| IoError::new("stat", &path, e))?;
        if kind.is_dir() {
            collect(&path, out)?;
        } else if kind.is_file() && path.extension().is_some_and(|e| e == "jsonl") {
            // A link is never read (the `symlink` check reports it).
            out.push(path);
        }
    }
    Ok(())
}

/// `(file, offset)` of lines already in a dead-letter file: inbox lines the
/// agent dead-lettered, outbox lines the router found undeliverable.
fn quarantined(
    layout: &Layout,
    files: &[PathBuf],
) -> Result<HashSet<(PathBuf, u64, u64)>, FormatError> {
    let mut out = HashSet::new();
    for dl in files
        .iter()
        .filter(|p| p.file_name().is_some_and(|n| n == names::DEADLETTER))
    {
        let dir = dl.parent().unwrap_or(layout.state_dir());
        let mut cursor = 0;
        loop {
            let batch = read_lines(dl, cursor, 4 << 20)?;
            if batch.lines.is_empty() {
                break;
            }
            for line in &batch.lines {
                let Ok(v) = serde_json::from_slice::<serde_json::Value>(&line.bytes) else {
                    continue;
                };
                if let (Some(file), Some(offset)) = (v["file"].as_str(), v["offset"].as_u64()) {
                    out.insert((dir.join(file), v["seg"].as_u64().unwrap_or(0), offset));
                }
            }
            cursor = batch.next;
        }
    }
    Ok(out)
}
