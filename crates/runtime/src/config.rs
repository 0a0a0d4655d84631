//! `society.toml`: the human-edited desired state.
//!
//! ```toml
//! [defaults]              # policy for every agent (see FORMAT.md for all keys)
//! hang_timeout = "30s"
//!
//! [[agent]]               # agents that exist as soon as the supervisor starts
//! id = "research"
//! role = "research"
//! keep_alive = false
//! brain = { kind = "echo" }
//! policy = { max_attempts = 5 }
//!
//! [roles.reviewer]        # templates for `society spawn reviewer`
//! brain = { kind = "echo" }
//! ```

use serde::Deserialize;
use society_core::state::{AgentConfig, Policy};
use society_core::AgentId;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid {}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocietyConfig {
    /// Policy keys applied to every agent before its own `policy`.
    #[serde(default)]
    pub defaults: serde_json::Map<String, serde_json::Value>,
    #[serde(default, rename = "agent")]
    pub agents: Vec<AgentDecl>,
    #[serde(default)]
    pub roles: BTreeMap<String, RoleDecl>,
    #[serde(default)]
    pub routing: RoutingConfig,
    #[serde(default)]
    pub cases: CasesConfig,
    /// `[prices."<model>"]`: USD per million tokens (`input`, `output`),
    /// injected into the brain config of `llm` agents using that model.
    #[serde(default)]
    pub prices: BTreeMap<String, serde_json::Value>,
    /// `[budget]`: society-wide limits, injected into every `llm` brain config.
    #[serde(default)]
    pub budget: Option<serde_json::Value>,
    /// `[autonomy]`, `[learning]`, `[debate]`: the governance policy (see
    /// `governance.rs`), each with optional `role.<role>` overrides.
    #[serde(default)]
    pub autonomy: Option<serde_json::Value>,
    #[serde(default)]
    pub learning: Option<serde_json::Value>,
    #[serde(default)]
    pub debate: Option<serde_json::Value>,
    /// `[sandbox]`: how the programs agents run are confined (see
    /// `society_brains::sandbox`), injected into every `command` and `llm`
    /// brain config; a brain's own `sandbox` table wins key by key.
    #[serde(default)]
    pub sandbox: Option<serde_json::Value>,
    /// `[society]`: this society's own name (`@name` to other societies).
    #[serde(default)]
    pub society: SocietySection,
    /// `[federation]`: the NATS JetStream link to other societies.
    #[serde(default)]
    pub federation: Option<FederationConfig>,
}

/// `[society]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocietySection {
    /// Its name among federated societies: `agent@<name>` reaches an agent
    /// here from another society.
    pub name: Option<society_core::SocietyName>,
}

/// `[federation]`: how this society reaches the others (see SCALING.md).
/// Credentials are never written here: they come from the environment
/// (`SOCIETY_NATS_CREDS`, `SOCIETY_NATS_TOKEN`, `SOCIETY_NATS_USER` and
/// `SOCIETY_NATS_PASSWORD`, `SOCIETY_NATS_CA`) or a `creds_file` path.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FederationConfig {
    /// `nats://host:port` (or `tls://…` for TLS); several separated by commas.
    pub nats_url: String,
    /// Replicas of this society's JetStream stream (3 on a NATS cluster).
    #[serde(default = "one")]
    pub replicas: usize,
    /// A NATS credentials file (a path; its content is never copied).
    #[serde(default)]
    pub creds_file: Option<PathBuf>,
}

fn one() -> usize {
    1
}

/// `[routing]`: rules on (from, to, type); the first match wins.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// What happens when no rule matches.
    #[serde(default)]
    pub default: RouteAction,
    #[serde(default, rename = "rule")]
    pub rules: Vec<RouteRule>,
    /// `[[routing.gate]]`: milestone gates.
    #[serde(default, rename = "gate")]
    pub gates: Vec<GateRule>,
}

/// A milestone gate: a case event of this name holds the case in
/// `awaiting_gate` and asks the orchestrator; a rejection's notes go to the
/// `revise_to` parties (agent ids or `role:<r>`), and the answer to the
/// agent that reached the gate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateRule {
    pub event: String,
    #[serde(default)]
    pub revise_to: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteAction {
    #[default]
    Allow,
    Deny,
    /// Hold the message until the orchestrator approves it.
    Approve,
}

/// Patterns are a party (`research`, `role:audio`, `orchestrator`,
/// `supervisor`) or `*`; `to = "role:R"` also matches any agent of role R.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    #[serde(default = "any")]
    pub from: String,
    #[serde(default = "any")]
    pub to: String,
    #[serde(rename = "type", default = "any")]
    pub kind: String,
    pub action: RouteAction,
}

fn any() -> String {
    "*".into()
}

/// `[cases]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CasesConfig {
    /// Due date of a case opened without `--due`.
    #[serde(with = "society_core::time::duration_str")]
    pub default_due: std::time::Duration,
}

impl Default for CasesConfig {
    fn default() -> Self {
        CasesConfig {
            default_due: std::time::Duration::from_secs(24 * 3600),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentDecl {
    pub id: String,
    pub role: Option<String>,
    #[serde(default)]
    pub brain: Option<serde_json::Value>,
    #[serde(default)]
    pub keep_alive: bool,
    #[serde(default)]
    pub policy: serde_json::Map<String, serde_json::Value>,
    /// What this agent can do; replaces its role's `capabilities`.
    #[serde(default)]
    pub capabilities: Option<Vec<String>>,
    /// The organisation keys (see `org_decl`); the agent's own win over its role's.
    #[serde(default)]
    pub reports_to: Option<String>,
    #[serde(default)]
    pub answer_within: Option<String>,
    #[serde(default)]
    pub approve: Option<society_core::org::Scope>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleDecl {
    #[serde(default)]
    pub brain: Option<serde_json::Value>,
    #[serde(default)]
    pub keep_alive: bool,
    #[serde(default)]
    pub policy: serde_json::Map<String, serde_json::Value>,
    /// What the agents of the role can do (matched against a message's `needs`).
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub reports_to: Option<String>,
    #[serde(default)]
    pub answer_within: Option<String>,
    #[serde(default)]
    pub approve: Option<society_core::org::Scope>,
}

impl SocietyConfig {
    /// `[federation]` needs `[society] name`, a NATS URL and sane replicas.
    fn check_federation(&self, path: &Path) -> Result<(), ConfigError> {
        let Some(f) = &self.federation else {
            return Ok(());
        };
        let bad = |message: String| ConfigError::Invalid {
            path: path.into(),
            message,
        };
        if self.society.name.is_none() {
            return Err(bad(
                "[federation] needs [society] name: the name other societies address this one by (agent@name)".into(),
            ));
        }
        for url in f.nats_url.split(',') {
            let url = url.trim();
            let scheme = url.split_once("://").map(|(s, _)| s);
            if !matches!(scheme, Some("nats" | "tls")) || url.len() <= "nats://".len() {
                return Err(bad(format!(
                    "[federation] nats_url {url:?}: expected nats://HOST:PORT or tls://HOST:PORT"
                )));
            }
        }
        if !(1..=5).contains(&f.replicas) {
            return Err(bad(format!(
                "[federation] replicas = {}: JetStream allows 1 to 5",
                f.replicas
            )));
        }
        Ok(())
    }

    /// Reads `society.toml`; a missing file is an empty config.
    pub fn load(path: &Path) -> Result<SocietyConfig, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(SocietyConfig::default())
            }
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.into(),
                    source,
                })
            }
        };
        Self::parse(&text, path)
    }

    /// Reads the text of `society.toml` (`path` names it in errors) and
    /// checks it as a whole: every agent resolves, routing rules and gates
    /// name real parties and types.
    pub fn parse(text: &str, path: &Path) -> Result<SocietyConfig, ConfigError> {
        let cfg: SocietyConfig = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: path.into(),
            message: e.to_string(),
        })?;
        // Resolve everything once so a bad key is reported at load, with its agent.
        let agents = cfg.resolve_all(path)?;
        for (name, role) in &cfg.roles {
            checked_capabilities(path, &format!("role {name}"), &role.capabilities)?;
        }
        cfg.check_org(path, &agents)?;
        cfg.check_federation(path)?;
        cfg.governance()
            .validate()
            .map_err(|message| ConfigError::Invalid {
                path: path.into(),
                message,
            })?;
        for (i, gate) in cfg.routing.gates.iter().enumerate() {
            let bad = |message: String| ConfigError::Invalid {
                path: path.into(),
                message: format!("routing gate {}: {message}", i + 1),
            };
            if !society_core::envelope::valid_type(&gate.event) {
                return Err(bad(format!(
                    "event {:?} is not a valid event name",
                    gate.event
                )));
            }
            for p in &gate.revise_to {
                match p.parse::<society_core::Party>() {
                    Ok(society_core::Party::Agent(_) | society_core::Party::Role(_)) => {}
                    _ => {
                        return Err(bad(format!(
                            "revise_to {p:?} is not an agent id or role:<name>"
                        )))
                    }
                }
            }
        }
        for (i, rule) in cfg.routing.rules.iter().enumerate() {
            for pattern in [&rule.from, &rule.to] {
                if pattern != "*" && pattern.parse::<society_core::Party>().is_err() {
                    return Err(ConfigError::Invalid {
                        path: path.into(),
                        message: format!(
                            "routing rule {}: {pattern:?} is not a party or \"*\"",
                            i + 1
                        ),
                    });
                }
            }
            if rule.kind != "*" && !society_core::envelope::valid_type(&rule.kind) {
                return Err(ConfigError::Invalid {
                    path: path.into(),
                    message: format!(
                        "routing rule {}: {:?} is not a message type or \"*\"",
                        i + 1,
                        rule.kind
                    ),
                });
            }
        }
        Ok(cfg)
    }

    fn resolve_all(&self, path: &Path) -> Result<Vec<AgentConfig>, ConfigError> {
        self.agents
            .iter()
            .map(|a| {
                let brain = a.brain.clone().unwrap_or_else(default_brain);
                let role = a.role.clone().unwrap_or_else(|| a.id.clone());
                let mut cfg = self.resolve(path, &a.id, &role, brain, a.keep_alive, &a.policy)?;
                if let Some(own) = &a.capabilities {
                    cfg.capabilities = checked_capabilities(path, &format!("agent {}", a.id), own)?;
                }
                let template = self.roles.get(&role);
                cfg.org = org_decl(
                    path,
                    &a.id,
                    [
                        (&a.reports_to, &a.answer_within, &a.approve),
                        template.map_or((&None, &None, &None), |t| {
                            (&t.reports_to, &t.answer_within, &t.approve)
                        }),
                    ],
                )?;
                Ok(cfg)
            })
            .collect()
    }

    /// Refuses a `reports_to` naming a missing agent, something outside the
    /// society, or a cycle, with the chain printed.
    fn check_org(&self, path: &Path, agents: &[AgentConfig]) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.into(),
            message,
        };
        let pairs: Vec<(String, Option<String>)> = agents
            .iter()
            .map(|a| (a.id.to_string(), a.org.reports_to.clone()))
            .collect();
        society_core::org::validate(&pairs).map_err(invalid)?;
        // A role's lead must be declared too (agents spawned later report to it).
        for (role, t) in &self.roles {
            if let Some(up) = &t.reports_to {
                let ok =
                    up == society_core::org::ORCHESTRATOR || pairs.iter().any(|(id, _)| id == up);
                if !ok {
                    return Err(invalid(format!(
                        "role {role}: reports_to {up:?} names no declared agent (chain: role:{role} → {up} → ?)"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The fully resolved configs of the agents declared with `[[agent]]`.
    pub fn declared(&self, path: &Path) -> Result<Vec<AgentConfig>, ConfigError> {
        self.resolve_all(path)
    }

    /// Config for `society spawn ROLE`: the role template if any, overridden by flags.
    pub fn for_spawn(
        &self,
        path: &Path,
        id: &str,
        role: &str,
        brain: Option<serde_json::Value>,
        keep_alive: bool,
    ) -> Result<AgentConfig, ConfigError> {
        let template = self.roles.get(role).cloned().unwrap_or_default();
        let brain = brain.or(template.brain).unwrap_or_else(default_brain);
        let mut cfg = self.resolve(
            path,
            id,
            role,
            brain,
            keep_alive || template.keep_alive,
            &template.policy,
        )?;
        cfg.org = org_decl(
            path,
            id,
            [
                (
                    &template.reports_to,
                    &template.answer_within,
                    &template.approve,
                ),
                (&None, &None, &None),
            ],
        )?;
        Ok(cfg)
    }

    fn resolve(
        &self,
        path: &Path,
        id: &str,
        role: &str,
        brain: serde_json::Value,
        keep_alive: bool,
        policy: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<AgentConfig, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.into(),
            message,
        };
        let id = AgentId::new(id).map_err(|e| invalid(e.to_string()))?;
        society_core::id::validate_role(role)
            .map_err(|_| invalid(format!("agent {id}: invalid role {role:?}")))?;
        let mut merged = self.defaults.clone();
        merged.extend(policy.clone());
        let policy: Policy = serde_json::from_value(serde_json::Value::Object(merged))
            .map_err(|e| invalid(format!("agent {id}: policy: {e}")))?;
        policy
            .check()
            .map_err(|e| invalid(format!("agent {id}: policy: {e}")))?;
        let brain = match brain {
            serde_json::Value::String(kind) => serde_json::json!({ "kind": kind }),
            other => other,
        };
        let brain = self.inject_llm(brain);
        society_brains::build(&brain).map_err(|e| invalid(format!("agent {id}: {e}")))?;
        let capabilities = match self.roles.get(role) {
            Some(r) => checked_capabilities(path, &format!("agent {id}"), &r.capabilities)?,
            None => Vec::new(),
        };
        Ok(AgentConfig {
            id,
            role: role.to_string(),
            brain,
            keep_alive,
            policy,
            capabilities,
            org: Default::default(),
        })
    }
}

/// Capabilities are names like message types (`[a-z0-9_.-]{1,64}`), kept
/// sorted and once each.
fn checked_capabilities(
    path: &Path,
    id: &str,
    list: &[String],
) -> Result<Vec<String>, ConfigError> {
    if let Some(bad) = list.iter().find(|c| !society_core::envelope::valid_type(c)) {
        return Err(ConfigError::Invalid {
            path: path.into(),
            message: format!(
                "{id}: capability {bad:?} is not a valid name (lowercase letters, digits, '_', '.', '-'; at most 64)"
            ),
        });
    }
    let mut out = list.to_vec();
    out.sort();
    out.dedup();
    Ok(out)
}

impl SocietyConfig {
    /// The governance tables as written (before `society policy set` changes).
    pub fn governance(&self) -> crate::governance::Governance {
        let empty = serde_json::json!({});
        crate::governance::from_tables(
            self.autonomy.as_ref().unwrap_or(&empty),
            self.learning.as_ref().unwrap_or(&empty),
            self.debate.as_ref().unwrap_or(&empty),
        )
    }

    /// An `llm` brain also needs its model's price and the society budget;
    /// both brains that run programs, the society's sandbox settings.
    fn inject_llm(&self, mut brain: serde_json::Value) -> serde_json::Value {
        let kind = brain
            .get("kind")
            .and_then(|k| k.as_str())
            .map(str::to_string);
        if let Some(sandbox) = self.sandbox.clone() {
            if matches!(kind.as_deref(), Some("llm" | "command")) {
                brain["society_sandbox"] = sandbox;
            }
        }
        if kind.as_deref() != Some("llm") {
            return brain;
        }
        let model = brain.get("model").and_then(|m| m.as_str()).unwrap_or("");
        if let Some(price) = self.prices.get(model).cloned() {
            brain["prices"] = price;
        }
        // Summaries made by a cheaper model are charged at its price.
        let compact = brain.get("compact_model").and_then(|m| m.as_str());
        if let Some(price) = compact.and_then(|m| self.prices.get(m)).cloned() {
            brain["compact_prices"] = price;
        }
        // Each fallback model is charged at its own price.
        if let Some(list) = brain.get_mut("fallback").and_then(|f| f.as_array_mut()) {
            for entry in list.iter_mut().filter(|e| e.is_object()) {
                let model = entry.get("model").and_then(|m| m.as_str()).unwrap_or("");
                if let Some(price) = self.prices.get(model).cloned() {
                    entry["prices"] = price;
                }
            }
        }
        if let Some(budget) = self.budget.clone() {
            brain["society_budget"] = budget;
        }
        brain
    }
}

type OrgKeys<'a> = (
    &'a Option<String>,
    &'a Option<String>,
    &'a Option<society_core::org::Scope>,
);

/// The organisation keys of an agent: its own, else its role's.
fn org_decl(
    path: &Path,
    id: &str,
    [own, role]: [OrgKeys<'_>; 2],
) -> Result<society_core::org::Org, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        path: path.into(),
        message: format!("agent {id}: {message}"),
    };
    let mut org = society_core::org::Org {
        reports_to: own.0.clone().or_else(|| role.0.clone()),
        approve: own.2.clone().or_else(|| role.2.clone()),
        ..Default::default()
    };
    if let Some(text) = own.1.as_ref().or(role.1.as_ref()) {
        org.answer_within = humantime::parse_duration(text)
            .map_err(|e| invalid(format!("answer_within {text:?}: {e}")))?;
        let year = std::time::Duration::from_secs(365 * 24 * 3600);
        if org.answer_within.is_zero() || org.answer_within > year {
            return Err(invalid(format!(
                "answer_within {text:?}: must be more than 0 and at most a year"
            )));
        }
    }
    if let Some(scope) = &org.approve {
        scope.check().map_err(invalid)?;
    }
    Ok(org)
}

fn default_brain() -> serde_json::Value {
    serde_json::json!({ "kind": "echo" })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SocietyConfig, String> {
        SocietyConfig::parse(text, Path::new("society.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn federation_is_read_and_checked() {
        let ok = parse(
            "[society]\nname = \"north\"\n[federation]\nnats_url = \"nats://127.0.0.1:4222, tls://10.0.0.2:4222\"\nreplicas = 3\n",
        )
        .expect("valid");
        assert_eq!(ok.society.name.expect("name").as_str(), "north");
        let f = ok.federation.expect("federation");
        assert_eq!(f.replicas, 3);
        assert_eq!(f.creds_file, None);
        for (text, says) in [
            (
                "[federation]\nnats_url = \"nats://h:1\"\n",
                "needs [society] name",
            ),
            ("[society]\nname = \"North\"\n", "invalid society name"),
            (
                "[society]\nname = \"n\"\n[federation]\nnats_url = \"http://h:1\"\n",
                "expected nats://",
            ),
            (
                "[society]\nname = \"n\"\n[federation]\nnats_url = \"nats://\"\n",
                "expected nats://",
            ),
            (
                "[society]\nname = \"n\"\n[federation]\nnats_url = \"nats://h:1\"\nreplicas = 0\n",
                "1 to 5",
            ),
            (
                "[society]\nname = \"n\"\n[federation]\nnats_url = \"nats://h:1\"\ntoken = \"x\"\n",
                "unknown field `token`",
            ),
        ] {
            let err = parse(text).expect_err(text);
            assert!(err.contains(says), "{text:?}: {err}");
        }
    }
}
