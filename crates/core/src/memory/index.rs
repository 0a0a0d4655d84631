//! `memory.idx.json`: term counts and line offsets of every memory, derived
//! from `memory.jsonl` and never trusted over it. It records the length and
//! modification time of the `memory.jsonl` it was built from; when either
//! differs (stale), the file is missing, or it does not parse or does not fit
//! (corrupt), it is rebuilt from `memory.jsonl`.

use super::Memory;
use crate::error::IoError;
use crate::jsonl;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Bumped when the index's shape changes: an index of another version is rebuilt.
pub const INDEX_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Index {
    pub version: u32,
    /// `memory.jsonl`'s length when indexed: every line before it is indexed.
    pub source_len: u64,
    /// Its modification time (ns since the epoch) when indexed.
    pub source_mtime_ns: u64,
    pub docs: Vec<Doc>,
}

/// One memory, as ranking needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Doc {
    pub id: String,
    pub ts_ms: u64,
    /// Where its line starts in `memory.jsonl`.
    pub offset: u64,
    pub text: BTreeMap<String, u32>,
    pub tags: BTreeMap<String, u32>,
}

/// How the index was found when it was loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexState {
    Fresh,
    Missing,
    Stale,
    Corrupt,
}

impl Doc {
    pub fn of(memory: &Memory, offset: u64) -> Doc {
        Doc {
            id: memory.id.clone(),
            ts_ms: crate::time::parse_rfc3339(&memory.ts)
                .map(crate::time::unix_ms)
                .unwrap_or(0),
            offset,
            text: super::rank::counts([memory.text.as_str()]),
            tags: super::rank::counts(memory.tags.iter().map(String::as_str)),
        }
    }
}

/// `(length, mtime ns)` of `memory.jsonl`; a missing file is `(0, 0)`.
pub fn source_stamp(path: &Path) -> Result<(u64, u64), IoError> {
    match std::fs::metadata(path) {
        Ok(m) => {
            let mtime = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as u64);
            Ok((m.len(), mtime))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((0, 0)),
        Err(e) => Err(IoError::new("stat", path, e)),
    }
}

/// Indexes every whole line of `memory.jsonl`. Lines that are not memories
/// are skipped (they cannot be recalled, and cannot be repaired here); an id
/// seen twice keeps its first line.
pub fn build(source: &Path) -> Result<Index, IoError> {
    let (_, mtime) = source_stamp(source)?;
    let mut docs: Vec<Doc> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut cursor = 0;
    loop {
        let batch = jsonl::read_lines(source, cursor, 4 << 20)?;
        if batch.lines.is_empty() {
            break;
        }
        for line in &batch.lines {
            if let Ok(m) = serde_json::from_slice::<Memory>(&line.bytes) {
                if seen.insert(m.id.clone()) {
                    docs.push(Doc::of(&m, line.offset));
                }
            }
        }
        cursor = batch.next;
    }
    Ok(Index {
        version: INDEX_VERSION,
        source_len: cursor,
        source_mtime_ns: mtime,
        docs,
    })
}

/// The index at `path` if it is fresh for `source`, else why not.
pub fn load(path: &Path, source: &Path) -> Result<Result<Index, IndexState>, IoError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Err(IndexState::Missing)),
        // The index is only a cache: one that cannot be read (a directory,
        // no permission) is rebuilt from memory.jsonl, never a reason to wait.
        Err(_) => return Ok(Err(IndexState::Corrupt)),
    };
    let Ok(index) = serde_json::from_slice::<Index>(&bytes) else {
        return Ok(Err(IndexState::Corrupt));
    };
    if index.version != INDEX_VERSION
        || index
            .docs
            .iter()
            .any(|d| d.offset >= index.source_len.max(1))
    {
        return Ok(Err(IndexState::Corrupt));
    }
    let (len, mtime) = source_stamp(source)?;
    if (len, mtime) != (index.source_len, index.source_mtime_ns) {
        return Ok(Err(IndexState::Stale));
    }
    Ok(Ok(index))
}
