//! An agent's skills (`agent-<id>/skills/`): listing them, and copying
//! them to another agent (`society skills copy FROM TO [NAME]`).
//!
//! A copy writes each file atomically (temp + rename) into the target's
//! `skills/`, so copying into a running agent is safe: it reads a skill
//! whole, old or new. A target file that exists with other content is
//! refused unless `force` (a skill is never overwritten by surprise); one
//! with the same content is left alone, so a copy can be repeated. Names
//! are relative paths inside `skills/`; symbolic links are refused, so
//! nothing outside the source folder is read.

use super::ClientError;
use serde::Serialize;
use society_core::reuse::SKILLS;
use society_core::{atomic, AgentId, AgentPaths, IoError, Layout};
use std::path::{Component, Path, PathBuf};

/// One skill: a top-level entry of `skills/`.
#[derive(Debug, Clone, Serialize)]
pub struct Skill {
    pub name: String,
    /// Files in it (1 for a file).
    pub files: usize,
    pub bytes: u64,
    pub modified: Option<String>,
}

/// What a copy did, by path relative to `skills/`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Copied {
    pub from: String,
    pub to: String,
    pub copied: Vec<String>,
    pub unchanged: Vec<String>,
}

/// The names of an agent's skills (top-level entries of `skills/`,
/// dot-files skipped), sorted.
pub fn names(paths: &AgentPaths) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(paths.dir.join(SKILLS)) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| !n.starts_with('.'))
        .collect();
    out.sort();
    out
}

/// An agent's skills.
pub fn list(layout: &Layout, id: &AgentId) -> Result<Vec<Skill>, ClientError> {
    let paths = layout.agent(id);
    let dir = paths.dir.join(SKILLS);
    let mut out = Vec::new();
    for name in names(&paths) {
        let mut files = Vec::new();
        walk(&dir, Path::new(&name), &mut files)?;
        let mut bytes = 0;
        let mut newest = None;
        for f in &files {
            if let Ok(m) = std::fs::metadata(dir.join(f)) {
                bytes += m.len();
                newest = newest.max(m.modified().ok());
            }
        }
        out.push(Skill {
            name,
            files: files.len(),
            bytes,
            modified: newest.map(society_core::time::format_rfc3339),
        });
    }
    Ok(out)
}

/// Copies `name` (or every skill) from one agent's `skills/` to another's.
pub fn copy(
    layout: &Layout,
    from: &AgentId,
    to: &AgentId,
    name: Option<&str>,
    force: bool,
) -> Result<Copied, ClientError> {
    if from == to {
        return Err(ClientError::BadSkill {
            name: name.unwrap_or(SKILLS).to_string(),
            reason: format!("{from} is both the source and the target"),
        });
    }
    let src = layout.agent(from).dir.join(SKILLS);
    let dst = layout.agent(to).dir.join(SKILLS);
    no_links(&src, Path::new(""))?;
    no_links(&dst, Path::new(""))?;
    let mut files = Vec::new();
    match name {
        Some(n) => {
            let rel = checked_name(n)?;
            no_links(&src, &rel)?;
            let path = src.join(&rel);
            if std::fs::symlink_metadata(&path).is_err() {
                return Err(ClientError::NoSkill {
                    agent: from.clone(),
                    name: n.to_string(),
                    have: names(&layout.agent(from)),
                });
            }
            walk(&src, &rel, &mut files)?;
        }
        None => {
            for n in names(&layout.agent(from)) {
                walk(&src, Path::new(&n), &mut files)?;
            }
        }
    }
    // Check everything before writing anything: a refusal copies nothing.
    let mut plan = Vec::new();
    for f in files {
        no_links(&dst, &f)?;
        let bytes =
            std::fs::read(src.join(&f)).map_err(|e| IoError::new("read", src.join(&f), e))?;
        let same = match std::fs::read(dst.join(&f)) {
            Ok(old) if old == bytes => true,
            Ok(_) if !force => {
                return Err(ClientError::SkillExists {
                    agent: to.clone(),
                    name: f.display().to_string(),
                })
            }
            _ => false,
        };
        plan.push((f, bytes, same));
    }
    let mut out = Copied {
        from: from.to_string(),
        to: to.to_string(),
        ..Copied::default()
    };
    for (f, bytes, same) in plan {
        let shown = f.display().to_string();
        if same {
            out.unchanged.push(shown);
            continue;
        }
        let target = dst.join(&f);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| IoError::new("create directory", parent, e))?;
        }
        atomic::write_bytes(&target, &bytes, true)?;
        out.copied.push(shown);
    }
    Ok(out)
}

/// Refuses a symbolic link at `root` or at any existing component of `rel`
/// below it: through one, a copy would read or write outside the folders
/// (an agent can plant a link in its own `skills/`).
fn no_links(root: &Path, rel: &Path) -> Result<(), ClientError> {
    let mut at = root.to_path_buf();
    let mut parts = vec![at.clone()];
    for c in rel.components() {
        at.push(c);
        parts.push(at.clone());
    }
    for p in parts {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(ClientError::BadSkill {
                    name: rel.display().to_string(),
                    reason: format!(
                        "{} is a symbolic link; skills are copied between plain folders only",
                        p.display()
                    ),
                })
            }
            Ok(_) => {}
            // Not there yet (a target's new directory): nothing to follow.
            Err(_) => break,
        }
    }
    Ok(())
}

/// A skill name as a path inside `skills/`: relative, no `..`, no `.` at
/// the start of a component.
fn checked_name(name: &str) -> Result<PathBuf, ClientError> {
    let bad = |reason: &str| ClientError::BadSkill {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.is_empty() {
        return Err(bad("a skill name cannot be empty"));
    }
    let path = Path::new(name);
    for c in path.components() {
        match c {
            Component::Normal(s) if !s.to_string_lossy().starts_with('.') => {}
            Component::Normal(_) => return Err(bad("hidden names (a leading '.') are not skills")),
            _ => return Err(bad("a skill is named by a relative path inside skills/ (no '/', '..' or '.' at its start)")),
        }
    }
    Ok(path.to_path_buf())
}

/// The files under `rel` (relative to `root`), as paths relative to `root`.
/// Symbolic links are refused: they could name files outside the folder.
fn walk(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<(), ClientError> {
    let path = root.join(rel);
    let meta = std::fs::symlink_metadata(&path).map_err(|e| IoError::new("read", &path, e))?;
    if meta.file_type().is_symlink() {
        return Err(ClientError::BadSkill {
            name: rel.display().to_string(),
            reason: format!(
                "{} is a symbolic link; skills are copied as plain files",
                path.display()
            ),
        });
    }
    if meta.is_file() {
        out.push(rel.to_path_buf());
        return Ok(());
    }
    let entries = std::fs::read_dir(&path).map_err(|e| IoError::new("list", &path, e))?;
    let mut names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
    names.sort();
    for n in names {
        if n.to_string_lossy().starts_with('.') {
            continue;
        }
        walk(root, &rel.join(n), out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_escape_are_refused() {
        for bad in [
            "",
            "../x",
            "/etc/passwd",
            "a/../../b",
            ".hidden",
            "a/.git",
            "./a",
        ] {
            assert!(checked_name(bad).is_err(), "{bad:?}");
        }
        for good in ["review.md", "prompts/review.md", "a-b_c"] {
            assert!(checked_name(good).is_ok(), "{good:?}");
        }
    }
}
