//! Creating (or updating) agent folders. Idempotent: nothing that exists is
//! truncated; `config.json` is replaced only when it differs.

use crate::activity;
use society_core::atomic;
use society_core::jsonl::{append_one, Durability};
use society_core::state::{AgentCheckpoint, AgentConfig};
use society_core::{FormatError, Layout};

/// What provisioning did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provisioned {
    Created,
    Updated,
    Unchanged,
    /// The folder's `config.json` could not be read; rewritten.
    Repaired,
}

pub fn provision(
    layout: &Layout,
    cfg: &AgentConfig,
    origin: &str,
) -> Result<Provisioned, FormatError> {
    let paths = layout.agent(&cfg.id);
    let existing = atomic::read_json::<AgentConfig>(&paths.config(), "agent config");
    let outcome = match &existing {
        Ok(None) => Provisioned::Created,
        Ok(Some(old)) if old == cfg => Provisioned::Unchanged,
        Ok(Some(_)) => Provisioned::Updated,
        Err(_) => Provisioned::Repaired,
    };
    paths.create()?;
    if !paths.checkpoint().exists() {
        AgentCheckpoint::default().write_durable(&paths)?;
    }
    if outcome != Provisioned::Unchanged {
        atomic::write_json(&paths.config(), cfg, true)?;
    }
    if outcome == Provisioned::Created {
        let rec = activity::record(
            society_core::kinds::event::CREATED,
            cfg.id.as_str(),
            0,
            serde_json::json!({"role": cfg.role, "brain": cfg.brain.get("kind"), "origin": origin}),
        );
        append_one(
            &layout.registry(),
            &rec,
            Durability::Durable,
            society_core::DEFAULT_MAX_RECORD,
        )?;
    }
    Ok(outcome)
}
