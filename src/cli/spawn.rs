//! `society spawn ROLE [--id ID] [--brain KIND] [--keep-alive] [--wait]`.

use super::daemon::ensure_supervisor;
use super::exit::{coded, Code};
use society_core::lock::{self, LockState};
use society_core::state::{AgentStatus, LiveState};
use society_core::{atomic, AgentId, IoError, Layout};
use society_runtime::config::SocietyConfig;
use society_runtime::control::{self, Request};
use society_runtime::provision::{provision, Provisioned};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The agent's role (a [roles.ROLE] template in society.toml applies if present).
    role: String,
    /// Agent id (default: ROLE-N, the first free N).
    #[arg(long)]
    id: Option<String>,
    /// Brain kind (echo, script); overrides the role template.
    #[arg(long, value_name = "KIND")]
    brain: Option<String>,
    /// Keep the process running when idle.
    #[arg(long)]
    keep_alive: bool,
    /// Wait until the agent process is up.
    #[arg(long)]
    wait: bool,
    /// How long --wait waits, in seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
}

pub fn run(layout: &Layout, args: Args) -> anyhow::Result<Code> {
    society_core::id::validate_role(&args.role).map_err(|_| {
        coded(
            Code::Invalid,
            format!(
                "invalid role {:?}: roles match [a-z0-9][a-z0-9-]{{0,62}}",
                args.role
            ),
        )
    })?;
    let config = SocietyConfig::load(&layout.society_toml())?;
    let (id, claimed) = match &args.id {
        Some(id) => (AgentId::new(id.as_str())?, false),
        None => (claim_free_id(layout, &args.role)?, true),
    };
    if let Err(e) = configure(layout, &config, &id, &args) {
        if claimed {
            // Give the number back if nothing was written into the folder
            // yet (`remove_dir` removes only an empty one).
            let _ = std::fs::remove_dir(&layout.agent(&id).dir);
        }
        return Err(e);
    }
    control::send(layout, &Request::Start { agent: id.clone() })?;
    ensure_supervisor(layout)?;
    if args.wait {
        wait_up(layout, &id, Duration::from_secs(args.timeout), 0)?;
    }
    println!("{id}");
    Ok(Code::Ok)
}

/// Writes the agent's config unless it exists and nothing asks to change it.
fn configure(
    layout: &Layout,
    config: &SocietyConfig,
    id: &AgentId,
    args: &Args,
) -> anyhow::Result<()> {
    let brain = args
        .brain
        .as_ref()
        .map(|kind| serde_json::json!({ "kind": kind }));
    let existing = layout.agent(id).config().exists();
    if existing && brain.is_none() && !args.keep_alive {
        return Ok(());
    }
    let cfg = config.for_spawn(
        &layout.society_toml(),
        id.as_str(),
        &args.role,
        brain,
        args.keep_alive,
    )?;
    if existing {
        let old = atomic::read_json::<society_core::state::AgentConfig>(
            &layout.agent(id).config(),
            "agent config",
        )?;
        if let Some(old) = old.filter(|o| o.role != args.role) {
            return Err(coded(
                Code::Invalid,
                format!(
                    "agent {id} exists with role {}, not {}",
                    old.role, args.role
                ),
            ));
        }
    }
    if provision(layout, &cfg, "spawn")? == Provisioned::Updated {
        eprintln!("updated the config of existing agent {id}");
    }
    Ok(())
}

/// Claims the first free `ROLE-N` by creating its folder. `create_dir` is
/// atomic — of concurrent spawns exactly one creates a given folder, the
/// others see it exist and try the next N — so two spawns never share an id
/// (checking first and creating after would let both see N free).
/// `provision` then fills the folder.
fn claim_free_id(layout: &Layout, role: &str) -> anyhow::Result<AgentId> {
    for n in 1u64.. {
        let id = AgentId::new(format!("{role}-{n}"))?;
        let dir = layout.agent(&id).dir;
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(id),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(IoError::new("create directory", &dir, e).into()),
        }
    }
    unreachable!("some ROLE-N is free")
}

/// Waits until a process of generation `> after_gen` holds the agent's lock
/// and reports idle or running.
pub fn wait_up(
    layout: &Layout,
    id: &AgentId,
    timeout: Duration,
    after_gen: u64,
) -> anyhow::Result<()> {
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
            return Err(coded(
                Code::Timeout,
                format!(
                    "agent {id} did not come up within {}s; see `society logs {id}`",
                    timeout.as_secs()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
