//! `society.toml` checked and reloaded into a running supervisor. The file
//! is validated here first, so a mistake is reported with its line and
//! column and the supervisor never sees it; then the supervisor is asked
//! (`Request::Reload`) and its answer read from its activity log.

use super::ClientError;
use crate::config::SocietyConfig;
use crate::control::{self, Request};
use crate::supervisor::reload::{RELOADED, RELOAD_FAILED};
use serde::{Deserialize, Serialize};
use society_core::{AgentId, Layout};
use std::time::{Duration, Instant};

/// What a reload changed, as the supervisor reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reloaded {
    /// Declared now and not before: created and started.
    pub added: Vec<AgentId>,
    /// Declared with another config: restarted with it (if running).
    pub changed: Vec<AgentId>,
    /// Declared before, not now: stopped and held; the folders stay.
    pub removed: Vec<AgentId>,
    /// How many declared agents kept their config.
    pub unchanged: usize,
}

/// Loads `society.toml` and every agent it declares, as a reload would.
pub fn check(layout: &Layout) -> Result<SocietyConfig, ClientError> {
    let path = layout.society_toml();
    let config = SocietyConfig::load(&path)?;
    config.declared(&path)?;
    Ok(config)
}

/// Checks `society.toml`, then asks the running supervisor to apply it and
/// waits for its answer. Without a running supervisor only the check is
/// done (`None`): the next start reads the file.
pub fn reload(layout: &Layout, timeout: Duration) -> Result<Option<Reloaded>, ClientError> {
    check(layout)?;
    if super::supervisor::supervisor_pid(layout).is_none() {
        return Ok(None);
    }
    let log = layout.supervisor_activity();
    // The answer is after the log's current end (rotation starts it over).
    let mut cursor = std::fs::metadata(&log).map_or(0, |m| m.len());
    let env = control::send(layout, &Request::Reload)?;
    let id = env.id.to_string();
    let deadline = Instant::now() + timeout;
    loop {
        if std::fs::metadata(&log).map_or(0, |m| m.len()) < cursor {
            cursor = 0;
        }
        for r in society_core::jsonl::read_objects(&log, &mut cursor)? {
            if r["request"].as_str() != Some(id.as_str()) {
                continue;
            }
            if r["event"] == RELOAD_FAILED {
                return Err(ClientError::ReloadFailed {
                    error: r["error"].as_str().unwrap_or("unknown").to_string(),
                });
            }
            if r["event"] == RELOADED {
                return Ok(Some(serde_json::from_value(r).unwrap_or_default()));
            }
        }
        if Instant::now() >= deadline {
            return Err(ClientError::NotYet {
                what: "the supervisor did not answer the reload".into(),
                timeout,
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
