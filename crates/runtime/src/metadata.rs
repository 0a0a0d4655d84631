//! Reading and rewriting an agent's `metadata.json` (the format is
//! `society_core::reuse`). Only the holder of the folder's `process.lock`
//! calls [`refresh`] or [`write`]: the agent process when it is caught up,
//! `society spawn` and `society retire` while they hold the lock of a dormant
//! folder. So there is one writer at a time, and every write is an atomic
//! replace.

use society_core::reuse::{ExperienceSummary, Metadata, METADATA};
use society_core::state::{AgentCheckpoint, AgentConfig};
use society_core::{atomic, AgentPaths, FormatError};
use std::path::PathBuf;

/// `agent-<id>/metadata.json`.
pub fn path(paths: &AgentPaths) -> PathBuf {
    paths.dir.join(METADATA)
}

/// The folder's metadata, if it has any (a folder from before metadata
/// existed has none; an unreadable one is an error).
pub fn read(paths: &AgentPaths) -> Result<Option<Metadata>, FormatError> {
    atomic::read_json(&path(paths), "agent metadata")
}

/// The metadata to update: what is on disk, else a new one for `cfg`
/// (an unreadable file is rebuilt: it is a summary, and the purposes it
/// listed are also in the activity log's `purpose_transition` records).
pub fn load_or_new(paths: &AgentPaths, cfg: &AgentConfig) -> Metadata {
    match read(paths) {
        Ok(Some(m)) => m,
        Ok(None) | Err(_) => Metadata::new(
            cfg.id.as_str(),
            &cfg.role,
            &society_core::time::now_rfc3339(),
        ),
    }
}

/// Replaces the file atomically (fsynced: it records purposes).
pub fn write(paths: &AgentPaths, meta: &Metadata) -> Result<(), FormatError> {
    atomic::write_json(&path(paths), meta, true).map_err(Into::into)
}

/// Copies the checkpoint's counts into the metadata, and marks it active now
/// if they changed. Whether it wrote.
pub fn refresh(
    paths: &AgentPaths,
    cfg: &AgentConfig,
    ckpt: &AgentCheckpoint,
) -> Result<bool, FormatError> {
    let exp = ExperienceSummary::of(ckpt);
    let exists = path(paths).exists();
    if !exists && exp == ExperienceSummary::default() {
        // Nothing to say yet: 1,000 idle agents starting write nothing.
        return Ok(false);
    }
    let mut meta = load_or_new(paths, cfg);
    let exp = exp.at_least(&meta.experience);
    if exists && meta.experience == exp && meta.role == cfg.role {
        return Ok(false);
    }
    if meta.experience != exp {
        meta.last_active = Some(society_core::time::now_rfc3339());
    }
    meta.experience = exp;
    meta.role = cfg.role.clone();
    // Not fsynced: the counts are copies of the checkpoint's, and a power
    // cut that undoes the rename brings back a whole older summary (the
    // purposes the CLI recorded were fsynced when it wrote them).
    atomic::write_json(&path(paths), &meta, false)?;
    Ok(true)
}
