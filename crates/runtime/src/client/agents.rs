//! Agents' lifecycles as the orchestrator asks for them: spawn, stop,
//! restart, and waiting until an agent is up. Each asks the supervisor
//! through its inbox (`control.rs`), so the request stands even if the
//! supervisor is down when it is made.

use super::{reuse, supervisor, ClientError};
use crate::config::SocietyConfig;
use crate::control::{self, Request};
use crate::provision::{provision, Provisioned};
use nix::sys::signal::Signal;
use society_core::lock::{self, LockState};
use society_core::state::{AgentCheckpoint, AgentConfig, AgentStatus, LiveState};
use society_core::{atomic, AgentId, IoError, Layout};
use std::time::{Duration, Instant};

/// What to spawn.
#[derive(Debug, Clone)]
pub struct Spawn {
    /// The role (a `[roles.ROLE]` template in society.toml applies).
    pub role: String,
    /// The id; `None`: `ROLE-N`, the first free N.
    pub id: Option<String>,
    /// A brain kind overriding the role template.
    pub brain: Option<String>,
    pub keep_alive: bool,
    /// `--purpose`: reuse the dormant folder of the role whose experience
    /// matches best (`client::reuse`), else make a new one with this purpose.
    pub purpose: Option<String>,
    /// `--tag`: the purpose's domains.
    pub tags: Vec<String>,
    /// `--fresh`: a new folder even if one could be reused.
    pub fresh: bool,
}

/// What [`spawn`] did.
#[derive(Debug, Clone)]
pub struct Spawned {
    pub id: AgentId,
    /// An existing agent's config was rewritten (a new brain or keep_alive).
    pub updated: bool,
    /// The folder reused for the purpose, if one was.
    pub reused: Option<reuse::Reused>,
    /// With a purpose: every folder of the role, scored, best first.
    pub candidates: Vec<reuse::Candidate>,
}

/// Creates (or reuses) an agent folder and asks the supervisor to start it.
/// Does not start a supervisor: see [`super::supervisor::ensure_supervisor`].
pub fn spawn(layout: &Layout, req: &Spawn) -> Result<Spawned, ClientError> {
    society_core::id::validate_role(&req.role).map_err(|_| ClientError::BadRole {
        role: req.role.clone(),
    })?;
    let config = SocietyConfig::load(&layout.society_toml())?;
    let Some(purpose) = &req.purpose else {
        return spawn_plain(layout, &config, req);
    };
    let q = reuse::Query {
        purpose: purpose.clone(),
        tags: req.tags.clone(),
    };
    let candidates = reuse::candidates(layout, &req.role, &q)?;
    if !req.fresh {
        if let Some(reused) = reuse::reuse_best(layout, &candidates, &q)? {
            let id = reused.agent.clone();
            let updated = configure(layout, &config, &id, req)?;
            control::send(layout, &Request::Start { agent: id.clone() })?;
            return Ok(Spawned {
                id,
                updated,
                reused: Some(reused),
                candidates,
            });
        }
    }
    let id = claim_free_id(layout, &req.role)?;
    // Held until the claim is in its inbox: until then the new folder looks
    // dormant (config written, inbox consumed), and a concurrent spawn by
    // purpose must not take it.
    let claim = reuse::try_lock(&layout.agent(&id).lock())?;
    let made = reuse::begin_fresh(layout, &id, &req.role, &q)
        .and_then(|()| configure(layout, &config, &id, req));
    if let Err(e) = made {
        // Give the number back if the config was not written.
        if !layout.agent(&id).config().exists() {
            let _ = std::fs::remove_file(layout.agent(&id).dir.join(society_core::reuse::METADATA));
            let _ = std::fs::remove_dir(&layout.agent(&id).dir);
        }
        return Err(e);
    }
    reuse::send_purpose(layout, &id, &q, 1)?;
    drop(claim);
    control::send(layout, &Request::Start { agent: id.clone() })?;
    Ok(Spawned {
        id,
        updated: false,
        reused: None,
        candidates,
    })
}

/// `spawn` without a purpose: the named folder, or the next `ROLE-N`.
fn spawn_plain(
    layout: &Layout,
    config: &SocietyConfig,
    req: &Spawn,
) -> Result<Spawned, ClientError> {
    let (id, claimed) = match &req.id {
        Some(id) => (AgentId::new(id.as_str())?, false),
        None => (claim_free_id(layout, &req.role)?, true),
    };
    let updated = match configure(layout, config, &id, req) {
        Ok(u) => u,
        Err(e) => {
            if claimed {
                // Give the number back if nothing was written into the
                // folder yet (`remove_dir` removes only an empty one).
                let _ = std::fs::remove_dir(&layout.agent(&id).dir);
            }
            return Err(e);
        }
    };
    control::send(layout, &Request::Start { agent: id.clone() })?;
    Ok(Spawned {
        id,
        updated,
        reused: None,
        candidates: Vec::new(),
    })
}

/// Writes the agent's config unless it exists and nothing asks to change
/// it; whether an existing config was rewritten.
fn configure(
    layout: &Layout,
    config: &SocietyConfig,
    id: &AgentId,
    req: &Spawn,
) -> Result<bool, ClientError> {
    let brain = req
        .brain
        .as_ref()
        .map(|kind| serde_json::json!({ "kind": kind }));
    let existing = layout.agent(id).config().exists();
    if existing && brain.is_none() && !req.keep_alive {
        return Ok(false);
    }
    let cfg = config.for_spawn(
        &layout.society_toml(),
        id.as_str(),
        &req.role,
        brain,
        req.keep_alive,
    )?;
    if existing {
        let old = atomic::read_json::<AgentConfig>(&layout.agent(id).config(), "agent config")?;
        if let Some(old) = old.filter(|o| o.role != req.role) {
            return Err(ClientError::RoleMismatch {
                id: id.clone(),
                has: old.role,
                asked: req.role.clone(),
            });
        }
    }
    Ok(provision(layout, &cfg, "spawn")? == Provisioned::Updated)
}

/// Claims the first free `ROLE-N` by creating its folder. `create_dir` is
/// atomic — of concurrent spawns exactly one creates a given folder, the
/// others see it exist and try the next N — so two spawns never share an id
/// (checking first and creating after would let both see N free).
/// `provision` then fills the folder.
fn claim_free_id(layout: &Layout, role: &str) -> Result<AgentId, ClientError> {
    let mut n = 1u64;
    loop {
        let id = AgentId::new(format!("{role}-{n}"))?;
        let dir = layout.agent(&id).dir;
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(id),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
            Err(e) => return Err(IoError::new("create directory", &dir, e).into()),
        }
    }
}

/// Waits until a process of generation `> after_gen` holds the agent's lock
/// and reports idle or running.
pub fn wait_up(
    layout: &Layout,
    id: &AgentId,
    timeout: Duration,
    after_gen: u64,
) -> Result<(), ClientError> {
    let paths = layout.agent(id);
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(LockState::Held(Some(info))) = lock::probe(&paths.lock()) {
            let st: Option<AgentStatus> = atomic::read_json(&paths.status(), "agent status")
                .ok()
                .flatten();
            if st.is_some_and(|s| {
                s.pid == info.pid
                    && s.gen > after_gen
                    && matches!(s.state, LiveState::Idle | LiveState::Running)
            }) {
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            return Err(ClientError::NotUp {
                id: id.clone(),
                secs: timeout.as_secs(),
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The id of an agent that exists.
pub fn existing(layout: &Layout, id: &str) -> Result<AgentId, ClientError> {
    let id = AgentId::new(id)?;
    if !layout.agent(&id).config().exists() {
        return Err(ClientError::NoAgent {
            id,
            dir: layout.state_dir().to_path_buf(),
            sending: false,
        });
    }
    Ok(id)
}

/// Stops an agent and keeps it stopped. With no supervisor running, a
/// leftover process is sent SIGTERM here. `wait`: until its lock is free.
pub fn stop(layout: &Layout, id: &AgentId, wait: Option<Duration>) -> Result<(), ClientError> {
    control::send(layout, &Request::Stop { agent: id.clone() })?;
    let lock_path = layout.agent(id).lock();
    if supervisor::supervisor_pid(layout).is_none() {
        // Nobody will read the request now: stop a leftover process ourselves
        // (once its lock names a live process: never pid 0, never a reused pid).
        if let Ok(LockState::Held(Some(info))) = lock::probe(&lock_path) {
            if info.is_alive() {
                supervisor::signal_group(info.pid, Signal::SIGTERM);
            }
        }
    }
    let Some(timeout) = wait else { return Ok(()) };
    let deadline = Instant::now() + timeout;
    while matches!(lock::probe(&lock_path)?, LockState::Held(_)) {
        if Instant::now() >= deadline {
            return Err(ClientError::StillRunning {
                id: id.clone(),
                secs: timeout.as_secs(),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// The generation an agent's checkpoint records (0 if none), read before a
/// restart so that [`wait_up`] waits for a newer one.
pub fn generation(layout: &Layout, id: &AgentId) -> Result<u64, ClientError> {
    let ckpt = AgentCheckpoint::read(&layout.agent(id)).map_err(|e| ClientError::Unusable {
        id: id.clone(),
        reason: e.to_string(),
    })?;
    Ok(ckpt.unwrap_or_default().generation)
}

/// Asks the supervisor to clear `failed` (or a stop) and start the agent.
pub fn request_restart(layout: &Layout, id: &AgentId) -> Result<(), ClientError> {
    control::send(layout, &Request::Restart { agent: id.clone() })?;
    Ok(())
}
