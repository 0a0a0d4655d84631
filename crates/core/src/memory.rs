//! An agent's memory: `memory.jsonl` in its folder, one record per line
//! (`{id, ts, text, tags, case?, message?}`), and the derived index
//! `memory.idx.json` that recall ranks from ([`index`], [`rank`]).
//!
//! Theory of operation: only the agent's own process writes its memory (its
//! brain, while handling a message). A memory's id is derived from the
//! message being handled and the remember's place in that handling
//! ([`derive_id`]), so a message handled again after a crash derives the
//! same ids and [`Store::remember`] skips those already present: each
//! remember lands exactly once, whatever dies when. Recall ranks every
//! memory (BM25 over text and tags, lifted by recency, see [`rank`]) and
//! reads only the top lines back by their offsets. The index is a cache:
//! missing, stale (memory.jsonl's length or mtime moved) or corrupt, it is
//! rebuilt from memory.jsonl. Both files start with `memory.`, the prefix a
//! reused folder keeps: memories are skills, not per-engagement state.

pub mod index;
pub mod rank;

use crate::error::IoError;
use crate::jsonl::{self, Durability};
use crate::{AgentPaths, CaseId, FormatError, MsgId};
use index::{Index, IndexState};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Longest text one memory may hold, in bytes.
pub const MAX_TEXT: usize = 16 * 1024;
/// Most tags one memory may carry.
pub const MAX_TAGS: usize = 16;
/// Longest tag, in bytes.
pub const MAX_TAG: usize = 64;
/// Most memories one recall returns.
pub const MAX_K: usize = 100;
/// The recall size when none is given.
pub const DEFAULT_K: usize = 5;
/// Longest line `memory.jsonl` accepts: text and tags at their limits fit
/// even when every byte is a control character JSON writes as `\u00XX`
/// (6 bytes), so a memory within the limits is never refused for its line.
const MAX_LINE: usize = 6 * (MAX_TEXT + MAX_TAGS * MAX_TAG) + 4096;

/// One line of `memory.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Memory {
    pub id: String,
    pub ts: String,
    pub text: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<CaseId>,
    /// The message being handled when it was remembered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<MsgId>,
}

/// What a brain asks to remember.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Note {
    pub text: String,
    pub tags: Vec<String>,
    pub case: Option<CaseId>,
}

/// Why a memory was refused or could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error("memory text is empty")]
    Empty,
    #[error("memory text is {size} bytes, over the limit of {max} bytes per memory; keep big content in workspace/ and remember its path")]
    TextTooLong { size: usize, max: usize },
    #[error("memory has {count} tags, over the limit of {max} tags per memory")]
    TooManyTags { count: usize, max: usize },
    #[error("memory tag {tag:?} is {size} bytes, over the limit of {max} bytes per tag")]
    TagTooLong {
        tag: String,
        size: usize,
        max: usize,
    },
    #[error("memory tag {0:?} is blank")]
    BlankTag(String),
    #[error("recall k must be between 1 and {max}, not {k}")]
    BadK { k: usize, max: usize },
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(transparent)]
    Format(#[from] FormatError),
}

impl MemoryError {
    /// The note itself is at fault (repeating it cannot help).
    pub fn is_refusal(&self) -> bool {
        !matches!(self, MemoryError::Io(_) | MemoryError::Format(_))
    }
}

/// The id of the memory a brain remembers while handling `msg`, `key` naming
/// the remember within that handling (its step, line or tool call): the same
/// on every attempt at the message, so a repeat is recognised.
pub fn derive_id(msg: &MsgId, key: &str) -> String {
    let seed = format!("memory:{msg}:{key}");
    // The high bit keeps memory ids apart from output ids (small indexes).
    let index = (crate::id::stable_hash(seed.as_bytes()) as u32) | 0x8000_0000;
    MsgId::derive(msg, index).to_string()
}

/// Checks a note against the limits; tags are trimmed.
pub fn check(note: &Note) -> Result<Vec<String>, MemoryError> {
    if note.text.trim().is_empty() {
        return Err(MemoryError::Empty);
    }
    if note.text.len() > MAX_TEXT {
        return Err(MemoryError::TextTooLong {
            size: note.text.len(),
            max: MAX_TEXT,
        });
    }
    if note.tags.len() > MAX_TAGS {
        return Err(MemoryError::TooManyTags {
            count: note.tags.len(),
            max: MAX_TAGS,
        });
    }
    let mut tags = Vec::with_capacity(note.tags.len());
    for tag in &note.tags {
        let t = tag.trim();
        if t.is_empty() {
            return Err(MemoryError::BlankTag(tag.clone()));
        }
        if t.len() > MAX_TAG {
            return Err(MemoryError::TagTooLong {
                tag: t.chars().take(32).collect(),
                size: t.len(),
                max: MAX_TAG,
            });
        }
        tags.push(t.to_string());
    }
    Ok(tags)
}

/// One recalled memory with its score's parts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    #[serde(flatten)]
    pub memory: Memory,
    pub score: f64,
    pub bm25: f64,
    pub recency: f64,
    pub matched: Vec<String>,
}

/// What a recall found, and how the index was (`fresh` or why rebuilt).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recall {
    pub hits: Vec<Hit>,
    pub index: IndexState,
    /// How many memories were ranked.
    pub total: usize,
}

/// Did a remember write a line?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remembered {
    Stored,
    /// The id was already in `memory.jsonl`: a repeat after a crash.
    AlreadyStored,
}

/// An agent folder's memory.
#[derive(Debug, Clone)]
pub struct Store {
    source: PathBuf,
    index: PathBuf,
}

impl Store {
    pub fn new(folder: &Path) -> Store {
        let paths = AgentPaths::new(folder.to_path_buf());
        Store {
            source: paths.memory(),
            index: paths.memory_index(),
        }
    }

    /// The index, fresh: loaded, or rebuilt (and saved when `save`).
    pub fn index(&self, save: bool) -> Result<(Index, IndexState), MemoryError> {
        match index::load(&self.index, &self.source)? {
            Ok(index) => Ok((index, IndexState::Fresh)),
            Err(state) => {
                let index = index::build(&self.source)?;
                if save {
                    self.save(&index);
                }
                Ok((index, state))
            }
        }
    }

    /// A derived file: failing to save it only costs a rebuild later.
    fn save(&self, index: &Index) {
        if let Err(e) = crate::atomic::write_json(&self.index, index, false) {
            tracing::warn!("memory index not saved: {e}");
        }
    }

    /// Appends the memory `id` unless it is already there. Refuses a note
    /// over the limits ([`check`]) before touching anything.
    pub fn remember(
        &self,
        id: &str,
        note: &Note,
        message: Option<MsgId>,
    ) -> Result<Remembered, MemoryError> {
        let tags = check(note)?;
        let (mut index, _) = self.index(false)?;
        if index.docs.iter().any(|d| d.id == id) {
            return Ok(Remembered::AlreadyStored);
        }
        let memory = Memory {
            id: id.to_string(),
            ts: crate::time::now_rfc3339(),
            text: note.text.clone(),
            tags,
            case: note.case.clone(),
            message,
        };
        let line = serde_json::to_vec(&memory).map_err(|e| {
            IoError::new(
                "serialise a memory for",
                &self.source,
                std::io::Error::other(e),
            )
        })?;
        let offset = jsonl::append_one(&self.source, &line, Durability::Durable, MAX_LINE)?;
        crate::fault::point("memory.stored");
        // Only this process writes memory.jsonl: the index grows by the line
        // just written. A crash before this save leaves it stale: rebuilt.
        let (len, mtime) = index::source_stamp(&self.source)?;
        if index.source_len == offset {
            index.docs.push(index::Doc::of(&memory, offset));
            index.source_len = len;
            index.source_mtime_ns = mtime;
            self.save(&index);
        }
        Ok(Remembered::Stored)
    }

    /// The best `k` memories for `query` at `now`. `save`: write a rebuilt
    /// index back (the agent does; readers from outside its process do not).
    pub fn recall(
        &self,
        query: &str,
        k: usize,
        now: std::time::SystemTime,
        save: bool,
    ) -> Result<Recall, MemoryError> {
        if k == 0 || k > MAX_K {
            return Err(MemoryError::BadK { k, max: MAX_K });
        }
        let (index, state) = self.index(save)?;
        let docs: Vec<rank::DocTerms<'_>> = index
            .docs
            .iter()
            .map(|d| rank::DocTerms {
                text: &d.text,
                tags: &d.tags,
                ts_ms: d.ts_ms,
            })
            .collect();
        let ranked = rank::rank(&docs, query, k, crate::time::unix_ms(now));
        let mut hits = Vec::with_capacity(ranked.len());
        for s in ranked {
            let doc = &index.docs[s.doc];
            let Some(memory) = self.read_at(doc.offset)? else {
                continue;
            };
            hits.push(Hit {
                memory,
                score: s.score,
                bm25: s.bm25,
                recency: s.recency,
                matched: s.matched,
            });
        }
        Ok(Recall {
            hits,
            index: state,
            total: index.docs.len(),
        })
    }

    fn read_at(&self, offset: u64) -> Result<Option<Memory>, MemoryError> {
        let batch = jsonl::read_lines(&self.source, offset, 1)?;
        Ok(batch
            .lines
            .first()
            .and_then(|l| serde_json::from_slice(&l.bytes).ok()))
    }

    /// Every memory, oldest first.
    pub fn list(&self) -> Result<Vec<Memory>, MemoryError> {
        let mut cursor = 0;
        let objects = jsonl::read_objects(&self.source, &mut cursor)?;
        Ok(objects
            .into_iter()
            .filter_map(|o| serde_json::from_value(o).ok())
            .collect())
    }
}

#[cfg(test)]
mod tests;
