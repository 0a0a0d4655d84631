//! A live JSONL file and its archived segments, read as one log: what
//! `logs` and `inbox` show, and follow across a rotation.

use serde_json::Value;
use society_core::segments;
use society_core::Layout;
use std::path::{Path, PathBuf};

pub struct History {
    layout: Layout,
    pub path: PathBuf,
    /// Which segment the cursor is in (the live file's number when read).
    seq: u64,
    cursor: u64,
}

fn objects(bytes: &[u8]) -> impl Iterator<Item = Value> + '_ {
    bytes
        .split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice::<Value>(l).ok())
        .filter(Value::is_object)
}

impl History {
    pub fn new(layout: &Layout, path: PathBuf) -> History {
        History {
            layout: layout.clone(),
            path,
            seq: 0,
            cursor: 0,
        }
    }

    /// Every record so far — or, with `last`, enough of the newest to keep
    /// `last` of those `keep` accepts, reading archived segments (newest
    /// first) only as far back as needed.
    pub fn start(
        &mut self,
        last: Option<usize>,
        keep: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Vec<Value>> {
        self.seq = segments::live_seq(&self.layout, &self.path)?;
        let mut out: Vec<Value> = society_core::jsonl::read_objects(&self.path, &mut self.cursor)?
            .into_iter()
            .filter(&keep)
            .collect();
        let segs = segments::list(&self.layout, &self.path)?;
        for seg in segs.iter().rev() {
            if last.is_some_and(|n| out.len() >= n) {
                break;
            }
            let bytes = segments::read_segment(seg)?;
            let mut older: Vec<Value> = objects(&bytes).filter(&keep).collect();
            older.append(&mut out);
            out = older;
        }
        Ok(out)
    }

    /// Records written since the last call. When the file was rotated in
    /// between, the rest of the segment(s) read so far come first.
    pub fn more(&mut self) -> anyhow::Result<Vec<Value>> {
        let mut out = Vec::new();
        let now = segments::live_seq(&self.layout, &self.path)?;
        if now > self.seq {
            for seg in segments::list(&self.layout, &self.path)?
                .iter()
                .filter(|s| s.seq >= self.seq)
            {
                let bytes = segments::read_segment(seg)?;
                let from = if seg.seq == self.seq {
                    (self.cursor as usize).min(bytes.len())
                } else {
                    0
                };
                out.extend(objects(&bytes[from..]));
            }
            self.seq = now;
            self.cursor = 0;
        }
        out.extend(society_core::jsonl::read_objects(
            &self.path,
            &mut self.cursor,
        )?);
        Ok(out)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
