//! The governance policy: `[autonomy]`, `[learning]` and `[debate]` of
//! `society.toml`, per-role overrides (`[autonomy.role.<role>]`, the same for
//! the other two), and the orchestrator's `society policy set` changes.
//!
//! `society.toml` is the base; `.society-agent/policy.jsonl` logs every
//! `policy set` (`{ts, key, value, previous}`), applied in order on top;
//! `.society-agent/policy.json` is the result, rewritten atomically by the
//! supervisor when it (re)loads the config and by `policy set`. Agents read
//! `policy.json` at each decision, so a change takes effect without a
//! restart.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use society_core::governance::{AutonomyPolicy, LearningPolicy};
use society_core::jsonl::{append_one, read_lines, Durability};
use society_core::{FormatError, Layout};
use std::collections::BTreeMap;
use std::time::Duration;

/// `[debate]`: how collaborative decisions are debated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DebatePolicy {
    /// Hard deadline from the opening (the source's 300 s).
    #[serde(with = "society_core::time::duration_str")]
    pub time_limit: Duration,
    /// Consensus: average pairwise agreement ≥ this.
    pub threshold: f64,
    /// Least time between the starts of two iterations (the source's 30 s).
    #[serde(with = "society_core::time::duration_str")]
    pub min_interval: Duration,
    /// Who debates a decision type besides the proposer and its
    /// dependencies: parties (`dp`, `role:editor`), by decision type; `"*"`
    /// applies to every type.
    pub stakeholders: BTreeMap<String, Vec<String>>,
}

impl Default for DebatePolicy {
    fn default() -> DebatePolicy {
        DebatePolicy {
            time_limit: Duration::from_secs(300),
            threshold: 0.8,
            min_interval: Duration::from_secs(30),
            stakeholders: BTreeMap::new(),
        }
    }
}

impl DebatePolicy {
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(format!(
                "debate.threshold = {} is out of range (0 to 1)",
                self.threshold
            ));
        }
        if self.time_limit.is_zero() {
            return Err("debate.time_limit must be more than 0".into());
        }
        for (kind, parties) in &self.stakeholders {
            for p in parties {
                if p.parse::<society_core::Party>().is_err() {
                    return Err(format!(
                        "debate.stakeholders.{kind}: {p:?} is not an agent id or role:<name>"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The stakeholders of a decision type.
    pub fn stakeholders_of(&self, decision_type: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for key in [decision_type, "*"] {
            for p in self.stakeholders.get(key).into_iter().flatten() {
                if !out.contains(p) {
                    out.push(p.clone());
                }
            }
        }
        out
    }
}

/// The three tables, as raw JSON objects (each may hold a `role` table of
/// per-role overrides).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Governance {
    pub autonomy: Map<String, Value>,
    pub learning: Map<String, Value>,
    pub debate: Map<String, Value>,
    /// How many `policy set` changes are applied (0: `society.toml` only).
    pub version: u64,
}

/// A role's resolved policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resolved {
    pub autonomy: AutonomyPolicy,
    pub learning: LearningPolicy,
    pub debate: DebatePolicy,
}

const TABLES: [&str; 3] = ["autonomy", "learning", "debate"];

impl Governance {
    fn table(&self, name: &str) -> &Map<String, Value> {
        match name {
            "autonomy" => &self.autonomy,
            "learning" => &self.learning,
            _ => &self.debate,
        }
    }
    fn table_mut(&mut self, name: &str) -> &mut Map<String, Value> {
        match name {
            "autonomy" => &mut self.autonomy,
            "learning" => &mut self.learning,
            _ => &mut self.debate,
        }
    }

    /// The policy of an agent with this role: the table, then the role's
    /// overrides key by key (`baselines` and `stakeholders` merge by type).
    pub fn resolve(&self, role: Option<&str>) -> Result<Resolved, String> {
        fn merged(base: &Map<String, Value>, role: Option<&str>) -> Map<String, Value> {
            let mut out = base.clone();
            out.remove("role");
            let over = role.and_then(|r| base.get("role").and_then(|t| t.get(r)));
            if let Some(Value::Object(over)) = over {
                for (k, v) in over {
                    match (out.get_mut(k), v) {
                        (Some(Value::Object(into)), Value::Object(from)) => {
                            into.extend(from.clone());
                        }
                        _ => {
                            out.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
            out
        }
        let parse = |name: &str| -> Map<String, Value> { merged(self.table(name), role) };
        let at = |name: &str, e: serde_json::Error| match role {
            Some(r) => format!("{name} (role {r}): {e}"),
            None => format!("{name}: {e}"),
        };
        let autonomy: AutonomyPolicy = serde_json::from_value(Value::Object(parse("autonomy")))
            .map_err(|e| at("autonomy", e))?;
        let learning: LearningPolicy = serde_json::from_value(Value::Object(parse("learning")))
            .map_err(|e| at("learning", e))?;
        let debate: DebatePolicy =
            serde_json::from_value(Value::Object(parse("debate"))).map_err(|e| at("debate", e))?;
        autonomy.validate()?;
        learning.validate()?;
        debate.validate()?;
        Ok(Resolved {
            autonomy,
            learning,
            debate,
        })
    }

    /// Checks the tables and every role override in them.
    pub fn validate(&self) -> Result<(), String> {
        self.resolve(None)?;
        for name in TABLES {
            match self.table(name).get("role") {
                None => {}
                Some(Value::Object(roles)) => {
                    for role in roles.keys() {
                        society_core::id::validate_role(role)
                            .map_err(|_| format!("{name}.role: invalid role {role:?}"))?;
                        self.resolve(Some(role))?;
                    }
                }
                Some(_) => return Err(format!("{name}.role must be a table of roles")),
            }
        }
        Ok(())
    }

    /// The value at a dotted key (`autonomy.impact_max`,
    /// `autonomy.role.director.baselines.lighting`).
    pub fn get(&self, key: &str) -> Option<Value> {
        let mut parts = key.split('.');
        let table = parts.next()?;
        if !TABLES.contains(&table) {
            return None;
        }
        let mut at = Value::Object(self.table(table).clone());
        for p in parts {
            at = at.get(p)?.clone();
        }
        Some(at)
    }

    /// Sets a dotted key; refuses an unknown table, a key the policy does
    /// not have, and values out of range (the policy is unchanged then).
    pub fn set(&mut self, key: &str, value: Value) -> Result<(), String> {
        let parts: Vec<&str> = key.split('.').collect();
        if parts.len() < 2 || !TABLES.contains(&parts[0]) || parts.iter().any(|p| p.is_empty()) {
            return Err(format!(
                "unknown policy key {key:?} (expected autonomy.<key>, learning.<key> or debate.<key>, optionally <table>.role.<role>.<key>)"
            ));
        }
        let mut next = self.clone();
        let mut at = next.table_mut(parts[0]);
        for p in &parts[1..parts.len() - 1] {
            let entry = at
                .entry(p.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            at = entry
                .as_object_mut()
                .ok_or_else(|| format!("policy key {key:?}: {p:?} is not a table"))?;
        }
        at.insert(parts[parts.len() - 1].to_string(), value);
        next.validate().map_err(|e| format!("policy {key}: {e}"))?;
        *self = next;
        Ok(())
    }
}

/// One `policy set`, as logged in `policy.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub ts: String,
    pub key: String,
    pub value: Value,
    #[serde(default)]
    pub previous: Option<Value>,
}

/// The tables of `society.toml` with every logged change applied. A logged
/// change that no longer applies (the base changed under it) is skipped
/// with a warning, never fatal: the base is still valid.
pub fn effective(
    layout: &Layout,
    base: &Governance,
) -> Result<(Governance, Vec<String>), FormatError> {
    let mut g = base.clone();
    let mut warnings = Vec::new();
    for change in changes(layout)? {
        match g.set(&change.key, change.value.clone()) {
            Ok(()) => g.version += 1,
            Err(e) => warnings.push(format!("policy change at {} skipped: {e}", change.ts)),
        }
    }
    Ok((g, warnings))
}

/// Every logged `policy set`, oldest first (torn or invalid lines skipped).
pub fn changes(layout: &Layout) -> Result<Vec<Change>, FormatError> {
    let path = layout.policy_log();
    let mut out = Vec::new();
    let mut cursor = 0;
    loop {
        let batch = read_lines(&path, cursor, 4 << 20)?;
        if batch.lines.is_empty() {
            return Ok(out);
        }
        for line in batch.lines {
            if let Ok(c) = serde_json::from_slice::<Change>(&line.bytes) {
                out.push(c);
            }
        }
        cursor = batch.next;
    }
}

/// Writes `policy.json`.
pub fn publish(layout: &Layout, g: &Governance) -> Result<(), FormatError> {
    society_core::atomic::write_json(&layout.policy_json(), g, true)?;
    Ok(())
}

/// Computes the policy in effect from `society.toml`'s tables and the
/// change log, and publishes it. Returns the skipped changes' warnings.
pub fn republish(
    layout: &Layout,
    config: &crate::config::SocietyConfig,
) -> Result<Vec<String>, FormatError> {
    let (g, warnings) = effective(layout, &config.governance())?;
    publish(layout, &g)?;
    Ok(warnings)
}

/// The policy in effect (`policy.json`; defaults when there is none yet).
pub fn load(layout: &Layout) -> Result<Governance, FormatError> {
    Ok(society_core::atomic::read_json(&layout.policy_json(), "policy.json")?.unwrap_or_default())
}

/// `society policy set KEY VALUE`: validates against the policy in effect,
/// logs the change, republishes. `value` is JSON, or a bare word taken as
/// a string.
pub fn set(layout: &Layout, key: &str, value: &str) -> Result<Change, String> {
    let value: Value =
        serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
    let config = crate::config::SocietyConfig::load(&layout.society_toml())
        .map_err(|e| format!("{e}: {}", error_chain(&e)))?;
    let (mut g, _) = effective(layout, &config.governance()).map_err(|e| e.to_string())?;
    let previous = g.get(key);
    g.set(key, value.clone())?;
    g.version += 1;
    let change = Change {
        ts: society_core::time::now_rfc3339(),
        key: key.to_string(),
        value,
        previous,
    };
    let line = serde_json::to_vec(&change).map_err(|e| e.to_string())?;
    append_one(
        &layout.policy_log(),
        &line,
        Durability::Durable,
        society_core::DEFAULT_MAX_RECORD,
    )
    .map_err(|e| e.to_string())?;
    publish(layout, &g).map_err(|e| e.to_string())?;
    Ok(change)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = Vec::new();
    let mut at = e.source();
    while let Some(x) = at {
        out.push(x.to_string());
        at = x.source();
    }
    out.join(": ")
}

/// The base tables from a loaded `society.toml`.
pub fn from_tables(autonomy: &Value, learning: &Value, debate: &Value) -> Governance {
    let obj = |v: &Value| v.as_object().cloned().unwrap_or_default();
    Governance {
        autonomy: obj(autonomy),
        learning: obj(learning),
        debate: obj(debate),
        version: 0,
    }
}

/// What `society policy show` prints per role: the resolved values.
pub fn show(g: &Governance, roles: &[String]) -> Value {
    let mut by_role = Map::new();
    for r in roles {
        if let Ok(x) = g.resolve(Some(r)) {
            by_role.insert(r.clone(), serde_json::to_value(x).unwrap_or(Value::Null));
        }
    }
    json!({
        "version": g.version,
        "policy": g.resolve(None).ok(),
        "roles": by_role,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn roles_override_key_by_key_and_bad_values_are_refused() {
        let mut g = from_tables(
            &json!({"impact_max": 0.7, "baselines": {"lighting": "collaborative", "shot": "autonomous"},
                    "role": {"director": {"core_expertise": ["shot"], "baselines": {"lighting": "autonomous"}}}}),
            &json!({}),
            &json!({"time_limit": "2s"}),
        );
        g.validate().unwrap();
        let d = g.resolve(Some("director")).unwrap();
        assert_eq!(d.autonomy.impact_max, 0.7);
        assert_eq!(d.autonomy.core_expertise, ["shot"]);
        assert_eq!(d.autonomy.baselines.len(), 2);
        assert_eq!(
            d.autonomy.baselines["lighting"],
            society_core::governance::Level::Autonomous
        );
        assert_eq!(d.debate.time_limit, Duration::from_secs(2));
        let w = g.resolve(Some("writer")).unwrap();
        assert_eq!(
            w.autonomy.baselines["lighting"],
            society_core::governance::Level::Collaborative
        );

        let before = g.clone();
        assert!(g
            .set("autonomy.impact_max", json!(2.0))
            .unwrap_err()
            .contains("impact_max"));
        assert!(g
            .set("autonomy.impact_maxx", json!(0.5))
            .unwrap_err()
            .contains("impact_maxx"));
        assert!(g
            .set("nothing.x", json!(1))
            .unwrap_err()
            .contains("unknown policy key"));
        assert!(g
            .set(
                "autonomy.role.director.baselines.lighting",
                json!("sometimes")
            )
            .is_err());
        assert_eq!(g, before, "a refused change leaves the policy as it was");
        g.set("autonomy.role.director.risk_max", json!(0.5))
            .unwrap();
        assert_eq!(g.resolve(Some("director")).unwrap().autonomy.risk_max, 0.5);
        assert_eq!(g.resolve(Some("writer")).unwrap().autonomy.risk_max, 0.8);
    }

    #[test]
    fn stakeholders_are_the_types_then_everyones() {
        let g = from_tables(
            &json!({}),
            &json!({}),
            &json!({"stakeholders": {"lighting": ["dp", "role:gaffer"], "*": ["producer", "dp"]}}),
        );
        let d = g.resolve(None).unwrap().debate;
        assert_eq!(
            d.stakeholders_of("lighting"),
            ["dp", "role:gaffer", "producer"]
        );
        assert_eq!(d.stakeholders_of("pacing"), ["producer", "dp"]);
        let bad = from_tables(
            &json!({}),
            &json!({}),
            &json!({"stakeholders": {"x": ["no body"]}}),
        );
        assert!(bad
            .validate()
            .unwrap_err()
            .contains("debate.stakeholders.x"));
    }

    #[test]
    fn set_logs_and_republishes_and_effective_replays() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::at(dir.path());
        layout.create().unwrap();
        std::fs::write(layout.society_toml(), "[autonomy]\npattern_min = 0.9\n").unwrap();
        let base = from_tables(&json!({"pattern_min": 0.9}), &json!({}), &json!({}));
        publish(&layout, &base).unwrap();
        let c = set(&layout, "autonomy.pattern_min", "0.85").unwrap();
        assert_eq!(c.previous, Some(json!(0.9)));
        assert_eq!(
            load(&layout)
                .unwrap()
                .resolve(None)
                .unwrap()
                .autonomy
                .pattern_min,
            0.85
        );
        assert!(set(&layout, "autonomy.pattern_min", "1.5").is_err());
        assert_eq!(
            changes(&layout).unwrap().len(),
            1,
            "a refused set is not logged"
        );
        let (g, warnings) = effective(&layout, &base).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(g.version, 1);
        assert_eq!(g.resolve(None).unwrap().autonomy.pattern_min, 0.85);
    }
}
