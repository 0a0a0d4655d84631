//! `society spawn ROLE --purpose TEXT`: reusing the dormant folder of a role
//! whose experience best matches the purpose (`society_core::reuse` has the
//! split of a folder and the score).
//!
//! **Dormant** means: not retired, its `process.lock` not held, its inbox
//! consumed to the end with nothing in flight (no in-flight message, replay
//! or incident in the checkpoint, the live inbox the one the checkpoint
//! names), no approval request of its awaiting an answer, and no open case
//! it owns. A folder that is not dormant is never reused.
//!
//! **Claims never collide.** Candidates are tried best first; each is
//! locked (its `process.lock`, non-blocking — a held lock means a running
//! agent or another spawn: next candidate) and checked again under the
//! lock; the reset and the claim happen under it. The claim is a `purpose`
//! message appended to the folder's inbox before the lock is released, so a
//! concurrent spawn that locks the folder next finds unconsumed mail: not
//! dormant. No spawn-wide lock is needed.
//!
//! The reset: every *engagement* entry of the folder moves into
//! `archive/purpose-<N>-<date>/` (N the purpose that ends), the skeleton is
//! made again, `metadata.json` begins the new purpose, and the activity log
//! gets `purpose_transition`. A crash part-way leaves entries in the archive
//! or still in place, never lost; the folder stays dormant (no claim yet),
//! so the next spawn resets it again into a new archive folder.

use super::{send, ClientError};
use crate::metadata;
use serde::Serialize;
use society_core::kinds::{event, message};
use society_core::lock::{self, HeldLock, LockError, LockState};
use society_core::reuse::score::{self, Profile};
pub use society_core::reuse::score::{Query, Score};
use society_core::reuse::{self as core_reuse, Class, Metadata};
use society_core::state::{AgentCheckpoint, AgentConfig};
use society_core::{atomic, AgentId, AgentPaths, Envelope, Layout, Party};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// One folder of the role, as `--explain` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    pub agent: AgentId,
    /// Why it cannot be reused, if it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_dormant: Option<String>,
    pub score: Score,
}

impl Candidate {
    /// Dormant and relevant: worth trying.
    pub fn eligible(&self) -> bool {
        self.not_dormant.is_none() && self.score.relevant
    }
}

/// A reuse done.
#[derive(Debug, Clone, Serialize)]
pub struct Reused {
    pub agent: AgentId,
    pub previous: Option<String>,
    /// Where its state went, relative to the agent's folder.
    pub archive: String,
    pub skills_preserved: Vec<String>,
    pub state_reset: Vec<String>,
}

/// Every folder of `role`, scored against the purpose, best first
/// (eligible ones first, then by score, then by id).
pub fn candidates(layout: &Layout, role: &str, q: &Query) -> Result<Vec<Candidate>, ClientError> {
    let owners = open_case_owners(layout)?;
    let waiting = awaiting_answers(layout);
    let mut out = Vec::new();
    for id in layout.agent_ids()? {
        let paths = layout.agent(&id);
        let Ok(Some(cfg)) = atomic::read_json::<AgentConfig>(&paths.config(), "agent config")
        else {
            continue;
        };
        if cfg.role != role {
            continue;
        }
        let read = metadata::read(&paths);
        let unreadable = read.is_err();
        let meta = read.ok().flatten();
        let ckpt = read_ckpt(&paths);
        let profile = profile(&paths, meta.as_ref(), ckpt.as_ref());
        let mut not_dormant = match meta.as_ref().and_then(|m| m.retired.as_ref()) {
            Some(r) => Some(format!("retired at {}", r.at)),
            // It may say "retired": not reused on a guess.
            None if unreadable => Some("its metadata.json cannot be read".into()),
            None => match lock::probe(&paths.lock())? {
                LockState::Held(_) => Some("running (its process.lock is held)".into()),
                _ => None,
            },
        };
        if not_dormant.is_none() {
            not_dormant = state_not_dormant(layout, &paths, ckpt.as_ref())
                .or_else(|| {
                    let handled = ckpt.as_ref().map_or(0, |c| c.handled);
                    meta.as_ref().and_then(|m| m.unworked_claim(handled))
                })
                .or_else(|| owners.get(&id).map(|c| format!("owns open case {c}")))
                .or_else(|| {
                    waiting
                        .get(&id)
                        .map(|r| format!("awaits the answer to approval request {r}"))
                });
        }
        out.push(Candidate {
            agent: id,
            not_dormant,
            score: score::score(q, &profile),
        });
    }
    out.sort_by(|a, b| {
        b.eligible()
            .cmp(&a.eligible())
            .then(b.score.total.total_cmp(&a.score.total))
            .then(a.agent.cmp(&b.agent))
    });
    Ok(out)
}

/// Reuses the best eligible candidate for `purpose`, if one can be locked
/// and is still dormant under its lock (module docs).
pub fn reuse_best(
    layout: &Layout,
    candidates: &[Candidate],
    q: &Query,
) -> Result<Option<Reused>, ClientError> {
    // Tests: let concurrent spawns all choose before any claims.
    society_core::fault::pause("reuse_before_claim", Duration::from_millis(300));
    for c in candidates.iter().filter(|c| c.eligible()) {
        let paths = layout.agent(&c.agent);
        let Some(lock) = try_lock(&paths.lock())? else {
            continue;
        };
        // Again under the lock: another spawn may have claimed it since,
        // or a case or an approval request made it busy.
        let Ok(meta) = metadata::read(&paths) else {
            continue;
        };
        let ckpt = read_ckpt(&paths);
        let handled = ckpt.as_ref().map_or(0, |c| c.handled);
        if meta.as_ref().is_some_and(|m| m.retired.is_some())
            || meta
                .as_ref()
                .and_then(|m| m.unworked_claim(handled))
                .is_some()
            || state_not_dormant(layout, &paths, ckpt.as_ref()).is_some()
            || open_case_owners(layout)?.contains_key(&c.agent)
            || awaiting_answers(layout).contains_key(&c.agent)
        {
            continue;
        }
        let reused = reset_and_claim(layout, &c.agent, q)?;
        drop(lock);
        return Ok(Some(reused));
    }
    Ok(None)
}

/// Records the purpose of a folder just created, before its `config.json`
/// exists: nothing runs it yet, so this is the only writer.
pub fn begin_fresh(
    layout: &Layout,
    id: &AgentId,
    role: &str,
    q: &Query,
) -> Result<(), ClientError> {
    let paths = layout.agent(id);
    let now = society_core::time::now_rfc3339();
    let mut meta = Metadata::new(id.as_str(), role, &now);
    meta.begin_purpose(&q.purpose, &q.tags, &now, None);
    if let Some(p) = meta.purposes.last_mut() {
        // Its claim will be the first message it handles.
        p.handled_at_claim = Some(1);
    }
    metadata::write(&paths, &meta)?;
    Ok(())
}

/// Appends the `purpose` message that claims the folder (and tells the
/// agent its purpose).
pub fn send_purpose(layout: &Layout, id: &AgentId, q: &Query, n: u64) -> Result<(), ClientError> {
    let env = Envelope::new(
        Party::Orchestrator,
        Party::Agent(id.clone()),
        message::PURPOSE,
        serde_json::json!({"purpose": q.purpose, "tags": q.tags, "n": n}),
    );
    send::deliver(layout, &env)?;
    Ok(())
}

/// Takes a folder's lock without waiting long: a lock held for a moment by
/// a probe is retried for 100 ms; one held longer is a running agent or
/// another spawn's claim.
pub(crate) fn try_lock(path: &Path) -> Result<Option<HeldLock>, ClientError> {
    for _ in 0..10 {
        match HeldLock::try_acquire(path) {
            Ok(l) => return Ok(Some(l)),
            Err(LockError::Held { .. }) => std::thread::sleep(Duration::from_millis(10)),
            Err(LockError::Io(e)) => return Err(e.into()),
        }
    }
    Ok(None)
}

fn reset_and_claim(layout: &Layout, id: &AgentId, q: &Query) -> Result<Reused, ClientError> {
    let paths = layout.agent(id);
    let cfg =
        atomic::read_json::<AgentConfig>(&paths.config(), "agent config")?.ok_or_else(|| {
            ClientError::Missing {
                path: paths.config(),
            }
        })?;
    let mut meta: Metadata = metadata::load_or_new(&paths, &cfg);
    let now = society_core::time::now_rfc3339();
    let previous = meta.current_purpose.clone();
    let ending = meta.purposes.last().map_or(0, |p| p.n);
    let date = now.get(..10).unwrap_or("undated");
    let archive_root = paths.dir.join(core_reuse::ARCHIVE);
    std::fs::create_dir_all(&archive_root)
        .map_err(|e| society_core::IoError::new("create directory", &archive_root, e))?;
    // A crash mid-reset may have left the same name: take the next free one.
    let mut name = core_reuse::purpose_archive_name(ending, date);
    let mut k = 1;
    while archive_root.join(&name).exists() {
        k += 1;
        name = format!("{}-{k}", core_reuse::purpose_archive_name(ending, date));
    }
    let target = archive_root.join(&name);
    std::fs::create_dir(&target)
        .map_err(|e| society_core::IoError::new("create directory", &target, e))?;
    let (mut kept, mut moved) = (Vec::new(), Vec::new());
    let entries = std::fs::read_dir(&paths.dir)
        .map_err(|e| society_core::IoError::new("list", &paths.dir, e))?;
    let mut names: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    names.sort();
    for n in names {
        match core_reuse::class_of(&n) {
            Class::Kept => kept.push(n),
            Class::Continued => {}
            Class::Engagement => {
                let from = paths.dir.join(&n);
                std::fs::rename(&from, target.join(&n))
                    .map_err(|e| society_core::IoError::new("move into archive", &from, e))?;
                moved.push(n);
            }
        }
    }
    paths.create()?;
    sync_dir(&target)?;
    sync_dir(&paths.dir)?;
    society_core::fault::point("reuse_after_archive");
    let archive = format!("{}/{name}", core_reuse::ARCHIVE);
    meta.begin_purpose(&q.purpose, &q.tags, &now, Some(archive.clone()));
    if let Some(p) = meta.purposes.last_mut() {
        let handled = read_ckpt(&paths).map_or(0, |c| c.handled);
        p.handled_at_claim = Some(handled + 1);
    }
    let ckpt = read_ckpt(&paths).unwrap_or_default();
    meta.experience = core_reuse::ExperienceSummary::of(&ckpt).at_least(&meta.experience);
    metadata::write(&paths, &meta)?;
    let n = meta.next_purpose_n() - 1;
    let rec = crate::activity::record(
        event::PURPOSE_TRANSITION,
        id.as_str(),
        ckpt.generation,
        serde_json::json!({
            "previous": previous, "new": q.purpose, "tags": q.tags, "n": n,
            "skills_preserved": kept, "state_reset": moved, "archive": archive,
        }),
    );
    society_core::jsonl::append_one(
        &paths.activity(),
        &rec,
        society_core::jsonl::Durability::Durable,
        society_core::DEFAULT_MAX_RECORD,
    )?;
    send_purpose(layout, id, q, n)?;
    Ok(Reused {
        agent: id.clone(),
        previous,
        archive,
        skills_preserved: kept,
        state_reset: moved,
    })
}

fn sync_dir(dir: &Path) -> Result<(), ClientError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| society_core::IoError::new("fsync directory", dir, e).into())
}

fn read_ckpt(paths: &AgentPaths) -> Option<AgentCheckpoint> {
    AgentCheckpoint::read(paths).ok().flatten()
}

/// Why the folder's delivery state is not at rest, if it is not.
fn state_not_dormant(
    layout: &Layout,
    paths: &AgentPaths,
    ckpt: Option<&AgentCheckpoint>,
) -> Option<String> {
    let Some(ckpt) = ckpt else {
        return Some("its checkpoint.json cannot be read".into());
    };
    if ckpt.in_flight.is_some() || ckpt.replay.is_some() {
        return Some("a message is in flight".into());
    }
    if ckpt.incident.is_some() {
        return Some("its inbox has an incident (`society fsck --repair`)".into());
    }
    let live = society_core::segments::live_seq(layout, &paths.inbox()).unwrap_or(0);
    if live != ckpt.inbox_seg {
        return Some("its inbox was rotated and not yet read again".into());
    }
    let len = std::fs::metadata(paths.inbox()).map_or(0, |m| m.len());
    (len > ckpt.inbox_offset)
        .then(|| format!("{} bytes of mail not yet consumed", len - ckpt.inbox_offset))
}

/// Open cases by owner (one of each owner's, for the reason).
fn open_case_owners(layout: &Layout) -> Result<BTreeMap<AgentId, String>, ClientError> {
    let mut owners = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(layout.cases_dir()) else {
        return Ok(owners);
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(case) = name
            .to_str()
            .and_then(society_core::layout::case_of_log_name)
        else {
            continue;
        };
        let records = super::cases::read_records(&entry.path())?;
        let summary = society_core::case::CaseSummary::fold(case.as_str(), &records);
        if !summary.status.is_open() {
            continue;
        }
        if let Some(owner) = summary.owner.and_then(|o| AgentId::new(o).ok()) {
            owners.entry(owner).or_insert_with(|| case.to_string());
        }
    }
    Ok(owners)
}

/// Agents with an approval request still unanswered, and one such request.
fn awaiting_answers(layout: &Layout) -> BTreeMap<AgentId, String> {
    let mut out = BTreeMap::new();
    for a in crate::approvals::pending(layout).unwrap_or_default() {
        let who = match (&a.from, a.proposer()) {
            (_, Some(p)) => AgentId::new(p).ok(),
            (Party::Agent(id), None) => Some(id.clone()),
            _ => None,
        };
        if let Some(id) = who {
            out.entry(id).or_insert_with(|| a.id.to_string());
        }
    }
    out
}

/// What the score looks at: metadata's tags and purposes, the skills'
/// names, and the checkpoint's counts (fresher than the metadata's copy).
fn profile(paths: &AgentPaths, meta: Option<&Metadata>, ckpt: Option<&AgentCheckpoint>) -> Profile {
    let summary = ckpt
        .map(core_reuse::ExperienceSummary::of)
        .unwrap_or_default()
        .at_least(&meta.map(|m| m.experience.clone()).unwrap_or_default());
    let last = meta
        .and_then(|m| m.last_active.as_deref())
        .and_then(society_core::time::parse_rfc3339)
        .or_else(|| {
            std::fs::metadata(paths.checkpoint())
                .and_then(|m| m.modified())
                .ok()
        });
    let idle_days = last.map(|t| {
        SystemTime::now()
            .duration_since(t)
            .unwrap_or_default()
            .as_secs_f64()
            / 86_400.0
    });
    Profile {
        tags: meta.map(|m| m.tags.clone()).unwrap_or_default(),
        skills: super::skills::names(paths),
        purposes: meta
            .map(|m| m.purposes.iter().map(|p| p.purpose.clone()).collect())
            .unwrap_or_default(),
        message_types: summary.message_types.keys().cloned().collect(),
        success_rate: summary.success_rate(),
        cases: summary.total_cases,
        idle_days,
    }
}
