//! Retention for live JSONL files: rotation into numbered, compressed segments.
//!
//! A live file `<state>/<rel dir>/<stem>.jsonl` (an inbox, an outbox, an
//! activity log, a mirror) is *rotated* by its consumer once it is fully
//! consumed and past a size threshold: [`rotate`] renames it to
//! `<state>/archive/<rel dir>/<stem>.<seq>.jsonl`, and the next append (the
//! [`Appender`](crate::jsonl::Appender) opens with `O_CREAT`) starts a fresh
//! live file. [`compress`] then turns the segment into `<stem>.<seq>.jsonl.zst`.
//! `seq` is zero-padded to 6 digits, starts at 0 and only grows; the live file
//! is "segment number [`live_seq`]". Readers ([`read_objects_all`], [`lines`])
//! read the segments in order, then the live file.
//!
//! Why nothing is lost or doubled:
//!
//! * **Rotation vs appends.** [`rotate`] holds the live file's `flock` (the
//!   lock every append takes) while it checks the length and renames, so no
//!   append lands between "fully consumed" and "archived". An appender that
//!   waited for that lock finds its descriptor no longer names the live path
//!   and reopens it (appending to a new live file), never to the segment.
//! * **Rotation vs a crash.** `rename(2)` is atomic: after a crash the file is
//!   either still live (untouched, the cursor still fits) or a segment.
//! * **Compression vs a crash.** The `.zst` is written as `.zst.tmp`, fsynced
//!   and renamed into place only when whole, and the `.jsonl` is removed only
//!   after that rename is durable. So for one `seq` there is at any instant a
//!   `.jsonl`, a `.zst`, or both with the same bytes; [`list`] prefers the
//!   `.zst` and ignores `.tmp` leftovers.
//! * **Listing vs concurrent renames.** `readdir` may miss an entry renamed
//!   or removed while it runs (POSIX leaves it unspecified), e.g. a segment
//!   whose `.zst` appears and `.jsonl` goes during the listing. Segments are
//!   numbered without gaps, so [`list`] re-checks every missing number up to
//!   the highest found, and the numbers after it, by `stat`.
//!
//! **Contract for consumers** (whoever stores a cursor into a rotatable file):
//! a byte offset alone no longer names a position, because a new live file
//! reuses offsets. Store the live file's [`live_seq`] with the offset, and call
//! [`rotate`] only with an offset that is already durable in the checkpoint.
//! Then, after any crash, `live_seq > stored seq` means the file was rotated
//! exactly at the stored offset (rotate refuses any other length), i.e. fully
//! consumed: continue at offset 0 of the live file.

mod compress;
mod read;
mod rotate;

pub use compress::{compress, COMPRESSION_LEVEL};
pub use read::{lines, read_objects_all, read_segment, SegmentLines};
pub use rotate::{rotate, rotate_if};

use crate::error::{io, IoError};
use crate::layout::Layout;
use std::collections::btree_map::{BTreeMap, Entry};
use std::path::{Path, PathBuf};

/// One archived segment of a live file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub seq: u64,
    pub path: PathBuf,
    /// `<stem>.<seq>.jsonl.zst` (final) rather than `<stem>.<seq>.jsonl`
    /// (just rotated, or its compression not finished).
    pub compressed: bool,
}

const EXT: &str = ".jsonl";
const ZST_EXT: &str = ".jsonl.zst";

/// The directory holding the segments of `live`: `<state>/archive/<rel dir>`,
/// where `<rel dir>` is the live file's directory relative to the state
/// directory (empty for `registry.jsonl`). A file outside the state directory
/// (not one of the society's) keeps its segments in an `archive/` directory
/// beside it, so that the function stays total and every caller agrees.
pub fn archive_dir_of(layout: &Layout, live: &Path) -> PathBuf {
    let live = std::path::absolute(live).unwrap_or_else(|_| live.to_path_buf());
    let parent = live.parent().unwrap_or(Path::new("/"));
    match parent.strip_prefix(layout.state_dir()) {
        Ok(rel) => layout.archive_dir().join(rel),
        Err(_) => parent.join("archive"),
    }
}

/// The segments of `live`, by increasing `seq`, one per `seq` (the `.zst` if
/// both forms exist: it is renamed into place only when complete). A missing
/// archive directory is no segment.
pub fn list(layout: &Layout, live: &Path) -> Result<Vec<Segment>, IoError> {
    let dir = archive_dir_of(layout, live);
    let stem = stem_of(live)?;
    let mut found: BTreeMap<u64, bool> = BTreeMap::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(IoError::new("list", &dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(io("list", &dir))?;
        if let Some((seq, compressed)) = entry.file_name().to_str().and_then(|n| parse(n, stem)) {
            *found.entry(seq).or_default() |= compressed;
        }
    }
    // Re-check by name what readdir may have missed (module doc): the gaps,
    // then past the end until a number is free.
    let max = found.last_key_value().map(|(seq, _)| *seq);
    let mut seq = found.first_key_value().map_or(0, |(seq, _)| *seq);
    loop {
        if let Entry::Vacant(slot) = found.entry(seq) {
            match probe(&dir, stem, seq)? {
                Some(compressed) => {
                    slot.insert(compressed);
                }
                None if max.is_none_or(|max| seq > max) => break,
                None => {}
            }
        }
        seq += 1;
    }
    Ok(found
        .into_iter()
        .map(|(seq, compressed)| Segment {
            seq,
            path: segment_path(&dir, stem, seq, compressed),
            compressed,
        })
        .collect())
}

/// The number the live file will have once rotated: the last segment's + 1, or 0.
pub fn live_seq(layout: &Layout, live: &Path) -> Result<u64, IoError> {
    Ok(list(layout, live)?.last().map_or(0, |s| s.seq + 1))
}

/// `inbox` for `…/inbox.jsonl`.
fn stem_of(live: &Path) -> Result<&str, IoError> {
    let name = live.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        IoError::new(
            "name the segments of",
            live,
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a live file needs a UTF-8 file name",
            ),
        )
    })?;
    Ok(name.strip_suffix(EXT).unwrap_or(name))
}

fn segment_path(dir: &Path, stem: &str, seq: u64, compressed: bool) -> PathBuf {
    let ext = if compressed { ZST_EXT } else { EXT };
    dir.join(format!("{stem}.{seq:06}{ext}"))
}

/// `Some((seq, compressed))` if `name` is a segment of `stem`. Only the
/// canonical spelling counts (`000007`, not `0000007`), so one number never
/// has two names of the same form.
fn parse(name: &str, stem: &str) -> Option<(u64, bool)> {
    let rest = name.strip_prefix(stem)?.strip_prefix('.')?;
    let (digits, compressed) = match rest.strip_suffix(ZST_EXT) {
        Some(digits) => (digits, true),
        None => (rest.strip_suffix(EXT)?, false),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seq: u64 = digits.parse().ok()?;
    (format!("{seq:06}") == digits).then_some((seq, compressed))
}

/// Which form of segment `seq` exists, by name. The `.zst` is looked at on
/// both sides of the `.jsonl`: compression renames the `.zst` into place
/// before it removes the `.jsonl`, so a segment being compressed is seen in
/// one form or the other, never in neither.
fn probe(dir: &Path, stem: &str, seq: u64) -> Result<Option<bool>, IoError> {
    for compressed in [true, false, true] {
        if exists(&segment_path(dir, stem, seq, compressed))? {
            return Ok(Some(compressed));
        }
    }
    Ok(None)
}

fn exists(path: &Path) -> Result<bool, IoError> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(IoError::new("stat", path, e)),
    }
}

/// `path` with `suffix` appended to its file name (`….jsonl` → `….jsonl.zst`).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

fn sync_dir(dir: &Path) -> Result<(), IoError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("fsync directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_dirs_mirror_the_state_tree() {
        let layout = Layout::at("/s");
        let state = layout.state_dir().to_path_buf();
        let cases = [
            ("agent-e1/inbox.jsonl", "archive/agent-e1"),
            ("messages/agent-to-agent.jsonl", "archive/messages"),
            ("supervisor/cases/case-7.jsonl", "archive/supervisor/cases"),
            ("registry.jsonl", "archive"),
        ];
        for (live, dir) in cases {
            assert_eq!(archive_dir_of(&layout, &state.join(live)), state.join(dir));
        }
        assert_eq!(
            archive_dir_of(&layout, Path::new("/elsewhere/x.jsonl")),
            Path::new("/elsewhere/archive")
        );
    }

    #[test]
    fn segment_names_parse_only_in_canonical_form() {
        let table = [
            ("inbox.000000.jsonl", Some((0, false))),
            ("inbox.000042.jsonl.zst", Some((42, true))),
            ("inbox.1234567.jsonl", Some((1_234_567, false))),
            ("inbox.0000042.jsonl", None),
            ("inbox.42.jsonl", None),
            ("inbox.000042.jsonl.zst.tmp", None),
            ("inbox.jsonl", None),
            ("inbox.00004a.jsonl", None),
            ("inbox.x.000001.jsonl", None),
            ("outbox.000001.jsonl", None),
            ("inboxx.000001.jsonl", None),
            ("inbox.+00001.jsonl", None),
        ];
        for (name, want) in table {
            assert_eq!(parse(name, "inbox"), want, "{name}");
        }
        let dir = Path::new("/a");
        assert_eq!(
            segment_path(dir, "inbox", 7, true),
            Path::new("/a/inbox.000007.jsonl.zst")
        );
        assert_eq!(
            parse("inbox.1234567.jsonl", "inbox").map(|(s, c)| segment_path(dir, "inbox", s, c)),
            Some(PathBuf::from("/a/inbox.1234567.jsonl"))
        );
    }

    #[test]
    fn the_stem_drops_only_the_jsonl_extension() {
        assert_eq!(stem_of(Path::new("/a/inbox.jsonl")).ok(), Some("inbox"));
        assert_eq!(stem_of(Path::new("/a/daemon.log")).ok(), Some("daemon.log"));
        assert!(stem_of(Path::new("/")).is_err());
    }
}
