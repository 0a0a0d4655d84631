//! A circuit breaker per provider credential, shared by every agent of the
//! society: `.society-agent/circuits/<name>.json`.
//!
//! A refused key (HTTP 401/403) fails only its message; `circuit_after`
//! refusals in a row (by any agents using the same provider, endpoint and
//! key variable) *open* the circuit. While it is open no agent calls that
//! provider: a message that needs it is *parked* — the agent waits,
//! heartbeating, without spending attempts — and the agent whose refusal
//! opened it escalates once to the orchestrator. The circuit closes when the
//! file is removed (`society llm reset`) or when a call succeeds: every
//! `circuit_cooldown` one parked agent makes a single *probe* call.
//!
//! The file exists only while something is wrong (refusals counted, or
//! open); a success removes it. Updates take an exclusive `flock` on
//! `<name>.lock` and replace the JSON atomically, so agents never lose
//! each other's counts.

use super::config::LlmConfig;
use super::error::LlmError;
use super::http::CallError;
use crate::Hooks;
use serde::{Deserialize, Serialize};
use society_core::time;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The folder of circuit files under a society's state directory.
pub const DIR: &str = "circuits";

/// One circuit's file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub name: String,
    pub provider: String,
    pub endpoint: String,
    /// The key's environment variable (`null` for servers without keys).
    pub key_env: Option<String>,
    /// Refusals in a row.
    pub failures: u32,
    pub open: bool,
    /// When it opened (RFC 3339), `null` while closed.
    pub opened_at: Option<String>,
    /// The agent whose refusal opened it.
    pub opened_by: Option<String>,
    /// When the latest probe call was allowed.
    pub probe_at: Option<String>,
    /// The provider's latest refusal, as the error message says it.
    pub last_error: String,
    pub updated: String,
}

/// What a caller may do now.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    /// Call.
    Closed,
    /// Call once: the circuit is open, and this call finds out whether the
    /// provider accepts the key again.
    Probe,
    /// Do not call.
    Open(Box<State>),
}

pub struct Circuit {
    dir: PathBuf,
    name: String,
    provider: String,
    endpoint: String,
    key_env: Option<String>,
}

impl Circuit {
    /// The circuit of `cfg`'s credential, for an agent whose folder is `folder`
    /// (`.society-agent/agent-<id>`).
    pub fn of(folder: &Path, cfg: &LlmConfig) -> Circuit {
        let state = folder.parent().unwrap_or(Path::new("."));
        let endpoint = cfg.endpoint();
        let host = endpoint
            .split_once("://")
            .map_or(endpoint.as_str(), |(_, rest)| rest)
            .split('/')
            .next()
            .unwrap_or("");
        let raw = format!(
            "{}-{}-{}",
            cfg.provider.name(),
            host,
            cfg.key_env().unwrap_or("nokey")
        );
        let name = raw
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Circuit {
            dir: state.join(DIR),
            name,
            provider: cfg.provider.name().to_string(),
            endpoint,
            key_env: cfg.key_env().map(str::to_string),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn path(&self) -> PathBuf {
        self.dir.join(format!("{}.json", self.name))
    }

    /// Whether a call may go out now. Cheap while closed: one `stat`.
    pub fn gate(&self, cooldown: Duration) -> std::io::Result<Gate> {
        if !self.path().exists() {
            return Ok(Gate::Closed);
        }
        self.update(|state| {
            let Some(s) = state.as_mut().filter(|s| s.open) else {
                return Gate::Closed;
            };
            let last = s
                .probe_at
                .as_deref()
                .or(s.opened_at.as_deref())
                .and_then(time::parse_rfc3339)
                .unwrap_or(SystemTime::UNIX_EPOCH);
            if SystemTime::now() >= last + cooldown {
                let now = time::now_rfc3339();
                s.probe_at = Some(now.clone());
                s.updated = now;
                Gate::Probe
            } else {
                Gate::Open(Box::new(s.clone()))
            }
        })
    }

    /// Counts a refused key; true if this refusal opened the circuit.
    /// `after` = 0 never opens it.
    pub fn refused(&self, agent: &str, error: &str, after: u32) -> std::io::Result<bool> {
        self.update(|state| {
            let now = time::now_rfc3339();
            let s = state.get_or_insert_with(|| State {
                name: self.name.clone(),
                provider: self.provider.clone(),
                endpoint: self.endpoint.clone(),
                key_env: self.key_env.clone(),
                failures: 0,
                open: false,
                opened_at: None,
                opened_by: None,
                probe_at: None,
                last_error: String::new(),
                updated: now.clone(),
            });
            s.failures += 1;
            s.last_error = error.to_string();
            s.updated = now.clone();
            if s.open {
                // A failed probe: wait a whole cooldown again.
                s.probe_at = Some(now);
                return false;
            }
            if after > 0 && s.failures >= after {
                s.open = true;
                s.opened_at = Some(now);
                s.opened_by = Some(agent.to_string());
                return true;
            }
            false
        })
    }

    /// A call succeeded: the circuit closes. The state it had, if any.
    pub fn succeeded(&self) -> std::io::Result<Option<State>> {
        if !self.path().exists() {
            return Ok(None);
        }
        self.update(Option::take)
    }

    /// Runs `f` on the state under the circuit's lock and writes back what
    /// it leaves (`None` removes the file).
    fn update<R>(&self, f: impl FnOnce(&mut Option<State>) -> R) -> std::io::Result<R> {
        std::fs::create_dir_all(&self.dir)?;
        let lock = File::create(self.dir.join(format!("{}.lock", self.name)))?;
        lock.lock()?;
        let path = self.path();
        let before = read(&path);
        let mut state = before.clone();
        let result = f(&mut state);
        if state != before {
            match &state {
                Some(s) => society_core::atomic::write_json(&path, s, true)
                    .map_err(|e| std::io::Error::other(e.to_string()))?,
                None => match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                },
            }
        }
        Ok(result)
    }
}

/// How often a parked agent looks at the circuit file again.
const PARK_POLL: Duration = Duration::from_millis(250);

impl Circuit {
    /// Waits while the circuit is open (heartbeating; a stop request
    /// abandons the wait). `parked(state)` is told once when the wait begins,
    /// `resumed(how)` once when it ends (`"closed"` or `"probe"`).
    pub fn park(
        &self,
        cooldown: Duration,
        hooks: &mut dyn Hooks,
        mut parked: impl FnMut(&mut dyn Hooks, &State),
        mut resumed: impl FnMut(&mut dyn Hooks, &str),
    ) -> Result<(), CallError> {
        let mut waiting = false;
        loop {
            let gate = self.gate(cooldown).map_err(|e| self.io_error(e))?;
            let how = match gate {
                Gate::Closed => "closed",
                Gate::Probe => "probe",
                Gate::Open(state) => {
                    if !waiting {
                        waiting = true;
                        parked(hooks, &state);
                    }
                    if hooks.should_stop() {
                        return Err(CallError::Abandoned);
                    }
                    std::thread::sleep(PARK_POLL);
                    hooks.heartbeat();
                    continue;
                }
            };
            if waiting || how == "probe" {
                resumed(hooks, how);
            }
            return Ok(());
        }
    }

    /// What a call's result means for the circuit: a success closes it
    /// (the state it closed is passed to `closed`); a refused key is counted,
    /// and once the circuit is open the message is parked instead of failed
    /// ([`LlmError::CircuitOpen`]), with an escalation if this refusal opened it.
    pub fn record<T>(
        &self,
        result: Result<T, CallError>,
        agent: &str,
        after: u32,
        closed: impl FnOnce(&State),
    ) -> Result<T, CallError> {
        match result {
            Ok(v) => {
                if let Some(s) = self.succeeded().map_err(|e| self.io_error(e))? {
                    closed(&s);
                }
                Ok(v)
            }
            Err(CallError::Failed(e @ LlmError::Unauthorized { .. })) => {
                let error = e.to_string();
                let opened = self
                    .refused(agent, &error, after)
                    .map_err(|e| self.io_error(e))?;
                let open = opened || matches!(read(&self.path()), Some(s) if s.open);
                if !open {
                    return Err(e.into());
                }
                Err(LlmError::CircuitOpen {
                    circuit: self.name.clone(),
                    escalate: opened,
                    last: error,
                }
                .into())
            }
            Err(other) => Err(other),
        }
    }

    fn io_error(&self, e: std::io::Error) -> CallError {
        LlmError::Circuit {
            path: self.path(),
            source: e,
        }
        .into()
    }
}

/// A circuit file's state; unreadable or torn files count as closed (a
/// half-written file is never left: writes are atomic).
fn read(path: &Path) -> Option<State> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Every circuit of the society whose state directory is `state_dir`,
/// sorted by name.
pub fn list(state_dir: &Path) -> Vec<State> {
    let Ok(entries) = std::fs::read_dir(state_dir.join(DIR)) else {
        return Vec::new();
    };
    let mut out: Vec<State> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| read(&e.path()))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Circuit files that cannot be read (corrupt, not a circuit): they count
/// as closed; `society llm status` names them.
pub fn unreadable(state_dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(state_dir.join(DIR)) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json") && read(p).is_none())
        .collect();
    out.sort();
    out
}

/// Closes the circuit `name` (or every circuit): parked agents call again.
/// The states removed.
pub fn reset(state_dir: &Path, name: Option<&str>) -> std::io::Result<Vec<State>> {
    let mut removed = Vec::new();
    for s in list(state_dir) {
        if name.is_some_and(|n| n != s.name) {
            continue;
        }
        let c = Circuit {
            dir: state_dir.join(DIR),
            name: s.name.clone(),
            provider: s.provider.clone(),
            endpoint: s.endpoint.clone(),
            key_env: s.key_env.clone(),
        };
        if let Some(s) = c.succeeded()? {
            removed.push(s);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn circuit(dir: &Path) -> Circuit {
        let cfg = LlmConfig::parse(&json!({"kind": "llm", "provider": "openai", "model": "m",
            "base_url": "http://127.0.0.1:9"}))
        .expect("valid");
        Circuit::of(&dir.join("agent-a"), &cfg)
    }

    #[test]
    fn opens_after_n_refusals_probes_after_cooldown_and_closes_on_success() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = circuit(dir.path());
        assert_eq!(c.name(), "openai-127.0.0.1_9-OPENAI_API_KEY");
        assert_eq!(c.gate(Duration::ZERO).expect("gate"), Gate::Closed);
        assert!(!c.refused("a", "401", 3).expect("count"));
        assert!(!c.refused("b", "401", 3).expect("count"));
        assert_eq!(c.gate(Duration::ZERO).expect("gate"), Gate::Closed);
        assert!(c.refused("a", "401 again", 3).expect("count"));
        let hour = Duration::from_secs(3600);
        match c.gate(hour).expect("gate") {
            Gate::Open(s) => {
                assert_eq!((s.failures, s.opened_by.as_deref()), (3, Some("a")));
                assert_eq!(s.last_error, "401 again");
            }
            other => panic!("expected open, got {other:?}"),
        }
        assert_eq!(c.gate(Duration::ZERO).expect("gate"), Gate::Probe);
        // Only one probe per cooldown.
        assert!(matches!(c.gate(hour).expect("gate"), Gate::Open(_)));
        // A failed probe does not open it "again" (no second escalation).
        assert!(!c.refused("b", "401", 3).expect("count"));
        assert_eq!(list(dir.path()).len(), 1);
        assert!(c.succeeded().expect("close").is_some());
        assert_eq!(c.gate(hour).expect("gate"), Gate::Closed);
        assert!(list(dir.path()).is_empty());
        assert!(c.succeeded().expect("close").is_none());
    }

    #[test]
    fn reset_closes_one_or_all_and_zero_never_opens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = circuit(dir.path());
        assert!(!c.refused("a", "401", 0).expect("count"));
        assert_eq!(c.gate(Duration::ZERO).expect("gate"), Gate::Closed);
        assert!(c.refused("a", "401", 1).expect("count"));
        assert!(reset(dir.path(), Some("other")).expect("reset").is_empty());
        std::fs::write(dir.path().join(DIR).join("torn.json"), b"{\"name\":").expect("write");
        assert_eq!(unreadable(dir.path()).len(), 1);
        assert_eq!(list(dir.path()).len(), 1, "the torn file is not a circuit");
        assert_eq!(reset(dir.path(), None).expect("reset").len(), 1);
        assert_eq!(c.gate(Duration::ZERO).expect("gate"), Gate::Closed);
    }
}
