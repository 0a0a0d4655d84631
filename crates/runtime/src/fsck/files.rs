//! Every JSONL file: lines parse, envelopes validate, tails are whole.

use super::Report;
use society_core::jsonl::{read_lines, Appender, Durability};
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
    matches!(
        name,
        "inbox.jsonl" | "outbox.jsonl" | "agent-to-agent.jsonl"
    ) && !path.starts_with(layout.archive_dir())
}

pub(super) fn scan(
    layout: &Layout,
    repair: bool,
    report: &mut Report,
) -> Result<Scan, FormatError> {
    let mut files = Vec::new();
    collect(layout.state_dir(), &mut files)?;
    files.sort();
    let quarantined = quarantined(layout, &files)?;
    let mut scan = Scan::default();
    for path in files {
        report.files += 1;
        let envelopes = holds_envelopes(layout, &path);
        let mut starts = HashSet::new();
        let mut keys: HashMap<String, u64> = HashMap::new();
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
                    if quarantined.contains(&(path.clone(), line.offset)) {
                        report.note(
                            "jsonl",
                            Some(path.clone()),
                            Some(line.offset),
                            format!("{reason} (already dead-lettered)"),
                        );
                    } else {
                        let check = if envelopes { "envelope" } else { "jsonl" };
                        report.problem(check, Some(path.clone()), Some(line.offset), reason);
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
                        let mut a = Appender::open(&path, Durability::Durable, usize::MAX)?;
                        a.append_batch::<&[u8]>(&[])?;
                        torn.repaired = Some(
                            "terminated the fragment with a newline; it is now one bad line".into(),
                        );
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
    let in_agent_inbox = path.file_name().is_some_and(|n| n == "inbox.jsonl")
        && path
            .parent()
            .and_then(|d| d.file_name())
            .and_then(|d| d.to_str())
            .is_some_and(|d| d.starts_with("agent-"))
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
        } else if path.extension().is_some_and(|e| e == "jsonl") {
            out.push(path);
        }
    }
    Ok(())
}

/// `(file, offset)` of lines already in a dead-letter file: inbox lines the
/// agent dead-lettered, outbox lines the router found undeliverable.
fn quarantined(layout: &Layout, files: &[PathBuf]) -> Result<HashSet<(PathBuf, u64)>, FormatError> {
    let mut out = HashSet::new();
    for dl in files
        .iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "deadletter.jsonl"))
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
                    out.insert((dir.join(file), offset));
                }
            }
            cursor = batch.next;
        }
    }
    Ok(out)
}
