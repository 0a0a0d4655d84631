//! `society config reload`: `society.toml` read again by the running
//! supervisor, without a restart. Agents it adds start as any agent does
//! (at once if `keep_alive`, else on their first message), agents whose
//! declaration changed are restarted with the new config, agents it no
//! longer declares are stopped (their folders stay, like `society stop`),
//! and its routing rules and defaults apply to what is routed next.
//!
//! A file that does not load changes nothing. The answer is one record in
//! the supervisor's activity log, `config_reloaded` or
//! `config_reload_failed`, carrying the request's id, which the CLI waits for.

use super::{default_policy, Phase, Supervisor};
use crate::config::SocietyConfig;
use crate::provision::{provision, Provisioned};
use serde_json::json;
use society_core::kinds::event;
use society_core::state::AgentConfig;
use society_core::{atomic, AgentId, MsgId};
use std::collections::BTreeSet;

/// The `event` of the answer to a reload.
pub const RELOADED: &str = "config_reloaded";
/// The `event` of a reload that changed nothing because the file is invalid.
pub const RELOAD_FAILED: &str = "config_reload_failed";

/// What a reload changes, by agent.
#[derive(Debug, Default)]
struct Changes {
    added: Vec<AgentId>,
    changed: Vec<AgentId>,
    removed: Vec<AgentId>,
    unchanged: usize,
}

impl Supervisor {
    pub(super) fn reload(&mut self, request: &MsgId) {
        match self.apply_society_toml() {
            Ok(c) => {
                tracing::info!(
                    added = c.added.len(),
                    changed = c.changed.len(),
                    removed = c.removed.len(),
                    "society.toml reloaded"
                );
                self.activity.event(
                    RELOADED,
                    json!({"request": request, "added": c.added, "changed": c.changed,
                           "removed": c.removed, "unchanged": c.unchanged}),
                );
            }
            Err(error) => {
                tracing::warn!(%error, "society.toml not reloaded");
                self.activity
                    .event(RELOAD_FAILED, json!({"request": request, "error": error}));
            }
        }
    }

    fn apply_society_toml(&mut self) -> Result<Changes, String> {
        let path = self.layout.society_toml();
        let config = SocietyConfig::load(&path).map_err(|e| e.to_string())?;
        let declared = config.declared(&path).map_err(|e| e.to_string())?;
        for w in crate::governance::republish(&self.layout, &config).map_err(|e| e.to_string())? {
            tracing::warn!("{w}");
        }
        let mut c = Changes::default();
        for cfg in &declared {
            match provision(&self.layout, cfg, "society.toml").map_err(|e| e.to_string())? {
                Provisioned::Created => c.added.push(cfg.id.clone()),
                Provisioned::Updated | Provisioned::Repaired => c.changed.push(cfg.id.clone()),
                Provisioned::Unchanged => c.unchanged += 1,
            }
        }
        let now: BTreeSet<&AgentId> = declared.iter().map(|cfg| &cfg.id).collect();
        for id in self.declared_before() {
            let held = self.ckpt.agents.get(&id).is_some_and(|r| r.held);
            if !now.contains(&id) && !held && self.slots.contains_key(&id) {
                c.removed.push(id);
            }
        }
        self.routing = config.routing.clone();
        self.default_policy = default_policy(&config);
        self.router_durability = self.default_policy.durability;
        if let Err(e) = self.rescan_agents() {
            return Err(format!("agents added but not yet picked up: {e}"));
        }
        // Added agents are new slots now: started as every agent is, at
        // once if `keep_alive`, else when mail arrives.
        for id in &c.changed {
            self.restart_with_new_config(id);
        }
        for id in &c.removed {
            self.record(id).held = true;
            self.stop(id, "reload");
        }
        self.save_state();
        self.status_dirty = true;
        Ok(c)
    }

    /// The agents `society.toml` created, by the registry.
    fn declared_before(&self) -> Vec<AgentId> {
        let mut cursor = 0;
        let records = society_core::jsonl::read_objects(&self.layout.registry(), &mut cursor)
            .unwrap_or_default();
        let ids: BTreeSet<AgentId> = records
            .iter()
            .filter(|r| r["event"] == event::CREATED && r["origin"] == "society.toml")
            .filter_map(|r| r["agent"].as_str().and_then(|a| AgentId::new(a).ok()))
            .collect();
        ids.into_iter().collect()
    }

    /// The supervisor's copy of the config follows the folder's; a running
    /// agent restarts to read it (a stopped one reads it when it starts).
    fn restart_with_new_config(&mut self, id: &AgentId) {
        let Some(slot) = self.slots.get_mut(id) else {
            return;
        };
        if let Ok(Some(cfg)) =
            atomic::read_json::<AgentConfig>(&slot.paths.config(), "agent config")
        {
            slot.cfg = cfg;
        }
        if let Phase::Up(_) = slot.phase {
            slot.restart_requested = true;
            self.stop(id, "reload");
        }
    }
}
