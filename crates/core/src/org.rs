//! The organisation: who an agent reports to, how long a lead has to answer,
//! what a lead may approve — and the pure functions over it: supervision
//! chains, their validation (a missing lead, a cycle) and the lowest common
//! supervisor of several parties (SOCIETY.md O1/O2).
//!
//! A supervision chain is read through a lookup (`id → reports_to`), so the
//! same functions serve `society.toml` at load, the supervisor's directory
//! of agents and the CLI's `tree`. The orchestrator is the implicit top: an
//! agent without `reports_to` reports to it.

use crate::time::duration_str;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;

/// The top of every chain, as `reports_to` and in records.
pub const ORCHESTRATOR: &str = "orchestrator";

/// How long a lead has to answer before the item goes one node up.
pub const DEFAULT_ANSWER_WITHIN: Duration = Duration::from_secs(600);

/// An agent's place in the organisation (`config.json` → `org`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Org {
    /// The agent's lead (an agent id), or `None`: the orchestrator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reports_to: Option<String>,
    /// How long this agent, as a lead, has to answer an item.
    #[serde(with = "duration_str")]
    pub answer_within: Duration,
    /// What this agent, as a lead, may approve; `None`: nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approve: Option<Scope>,
}

impl Default for Org {
    fn default() -> Self {
        Org {
            reports_to: None,
            answer_within: DEFAULT_ANSWER_WITHIN,
            approve: None,
        }
    }
}

impl Org {
    /// Nothing set: left out of `config.json`, which stays as it was.
    pub fn is_default(&self) -> bool {
        *self == Org::default()
    }
}

/// `approve = { kinds = [...], max_usd = N, decision_types = [...] }`: the
/// approval requests a lead may answer. Empty lists mean "any".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scope {
    /// Request kinds: `plan` (an agent's `request_approval`), `decision` (a
    /// decision needing approval), `route` (a message held by a routing rule).
    pub kinds: Vec<String>,
    /// Requests that name an amount (`usd`, `cost_usd`, or a decision's
    /// `resource_cost`) above this are beyond the scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_usd: Option<f64>,
    /// For `decision` requests: the decision types allowed.
    pub decision_types: Vec<String>,
}

/// The request kinds a scope can name.
pub const REQUEST_KINDS: [&str; 3] = ["plan", "decision", "route"];

impl Scope {
    /// Whether a request with this body is within the scope; the reason if not.
    pub fn admits(&self, body: &Value) -> Result<(), String> {
        let kind = request_kind(body);
        if !self.kinds.is_empty() && !self.kinds.iter().any(|k| k == kind) {
            return Err(format!("kind {kind} is not in {:?}", self.kinds));
        }
        if let (Some(max), Some(usd)) = (self.max_usd, amount(body)) {
            if usd > max {
                return Err(format!("amount {usd} is over max_usd {max}"));
            }
        }
        if kind == "decision" && !self.decision_types.is_empty() {
            let t = body
                .pointer("/proposal/decision_type")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !self.decision_types.iter().any(|d| d == t) {
                return Err(format!(
                    "decision type {t:?} is not in {:?}",
                    self.decision_types
                ));
            }
        }
        Ok(())
    }

    /// Checks the keys' values (at load).
    pub fn check(&self) -> Result<(), String> {
        if let Some(k) = self
            .kinds
            .iter()
            .find(|k| !REQUEST_KINDS.contains(&k.as_str()))
        {
            return Err(format!(
                "approve.kinds: {k:?} is not one of {REQUEST_KINDS:?}"
            ));
        }
        if self.max_usd.is_some_and(|m| !(m >= 0.0 && m.is_finite())) {
            return Err("approve.max_usd must be a number >= 0".into());
        }
        Ok(())
    }
}

/// The kind of an approval request, from its body.
pub fn request_kind(body: &Value) -> &'static str {
    match body.get("kind").and_then(Value::as_str) {
        Some("route") => "route",
        Some("gate") => "gate",
        Some("debate") => "debate",
        _ if body.get("proposal").is_some_and(Value::is_object) => "decision",
        _ => "plan",
    }
}

/// The amount a request names, if any: the largest of those it names. An
/// amount that is not a number counts as unbounded, so no scope admits it.
pub fn amount(body: &Value) -> Option<f64> {
    ["/usd", "/cost_usd", "/proposal/context/resource_cost"]
        .iter()
        .filter_map(|p| body.pointer(p).filter(|v| !v.is_null()))
        .map(|v| v.as_f64().unwrap_or(f64::INFINITY))
        .reduce(f64::max)
}

/// The supervisors above `id`, nearest first, ending before the orchestrator.
/// Stops at an unknown lead or a repeat (a cycle the load did not refuse,
/// e.g. folders edited by hand): planning must never loop.
pub fn chain_above(id: &str, reports_to: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen: HashSet<String> = HashSet::from([id.to_string()]);
    let mut at = id.to_string();
    while let Some(up) = reports_to(&at) {
        if up == ORCHESTRATOR || !seen.insert(up.clone()) {
            break;
        }
        out.push(up.clone());
        at = up;
    }
    out
}

/// The lowest common supervisor of `parties`: the deepest node shared by
/// their chains (each chain starting at the party itself), except that a
/// party is never its own judge — then one node further up. `None`: the
/// orchestrator.
pub fn lowest_common(
    parties: &[String],
    reports_to: &dyn Fn(&str) -> Option<String>,
) -> Option<String> {
    let chains: Vec<Vec<String>> = parties
        .iter()
        .map(|p| {
            let mut c = vec![p.clone()];
            c.extend(chain_above(p, reports_to));
            c
        })
        .collect();
    let first = chains.first()?;
    let shared = first
        .iter()
        .position(|node| chains.iter().all(|c| c.contains(node)))?;
    // From the deepest shared node up, the first that is not a party.
    first[shared..]
        .iter()
        .find(|node| !parties.contains(node))
        .cloned()
}

/// Checks declared `(id, reports_to)` pairs: every lead must be a declared
/// agent or the orchestrator, and no chain may come back to itself. The
/// error prints the chain (`reports_to cycle: a → b → c → a`).
pub fn validate(agents: &[(String, Option<String>)]) -> Result<(), String> {
    let lookup = |id: &str| -> Option<Option<String>> {
        agents
            .iter()
            .find(|(a, _)| a == id)
            .map(|(_, up)| up.clone())
    };
    for (id, up) in agents {
        let Some(up) = up else { continue };
        if up == ORCHESTRATOR {
            continue;
        }
        match up.parse::<crate::Party>() {
            Ok(crate::Party::Agent(_)) => {}
            _ => {
                return Err(format!(
                    "agent {id}: reports_to {up:?} is outside the society (an agent id or \"orchestrator\")"
                ))
            }
        }
        if lookup(up).is_none() {
            return Err(format!(
                "agent {id}: reports_to {up:?} names no declared agent (chain: {id} → {up} → ?)"
            ));
        }
    }
    for (id, _) in agents {
        let mut path = vec![id.clone()];
        let mut at = id.clone();
        while let Some(Some(up)) = lookup(&at) {
            if up == ORCHESTRATOR {
                break;
            }
            if let Some(i) = path.iter().position(|p| *p == up) {
                let mut cycle = path[i..].to_vec();
                cycle.push(up);
                return Err(format!("reports_to cycle: {}", cycle.join(" → ")));
            }
            path.push(up.clone());
            at = up;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    /// orchestrator ← lead-a ← w1 w2 w3; orchestrator ← lead-b ← w4 w5 w6;
    /// lead-a ← sub ← s1.
    fn org() -> HashMap<String, String> {
        let mut m = HashMap::new();
        for w in ["w1", "w2", "w3", "sub"] {
            m.insert(w.to_string(), "lead-a".to_string());
        }
        for w in ["w4", "w5", "w6"] {
            m.insert(w.to_string(), "lead-b".to_string());
        }
        m.insert("s1".into(), "sub".into());
        m
    }

    fn lcs(parties: &[&str]) -> Option<String> {
        let m = org();
        let f = move |id: &str| m.get(id).cloned();
        let p: Vec<String> = parties.iter().map(|s| s.to_string()).collect();
        lowest_common(&p, &f)
    }

    #[test]
    fn chains_go_up_to_the_orchestrator() {
        let m = org();
        let f = move |id: &str| m.get(id).cloned();
        assert_eq!(chain_above("s1", &f), ["sub", "lead-a"]);
        assert_eq!(chain_above("lead-a", &f), Vec::<String>::new());
        let cyc = |id: &str| Some(if id == "a" { "b" } else { "a" }.to_string());
        assert_eq!(chain_above("a", &cyc), ["b"], "a cycle ends the chain");
    }

    #[test]
    fn lowest_common_supervisor_table() {
        for (parties, want) in [
            (&["w1", "w2"][..], Some("lead-a")),
            (&["w1"][..], Some("lead-a")),
            (&["w1", "w4"][..], None),
            (&["s1", "w2"][..], Some("lead-a")),
            (&["s1"][..], Some("sub")),
            // A party is not its own judge: one up.
            (&["w1", "lead-a"][..], None),
            (&["s1", "sub"][..], Some("lead-a")),
            (&["lead-a", "lead-b"][..], None),
            (&["nobody"][..], None),
            (&[][..], None),
        ] {
            assert_eq!(lcs(parties).as_deref(), want, "{parties:?}");
        }
    }

    #[test]
    fn validation_prints_the_chain() {
        let decl = |v: &[(&str, Option<&str>)]| -> Vec<(String, Option<String>)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.map(str::to_string)))
                .collect()
        };
        assert!(validate(&decl(&[("a", Some("b")), ("b", None)])).is_ok());
        assert!(validate(&decl(&[("a", Some("orchestrator"))])).is_ok());
        let e = validate(&decl(&[
            ("a", Some("b")),
            ("b", Some("c")),
            ("c", Some("a")),
        ]))
        .unwrap_err();
        assert_eq!(e, "reports_to cycle: a → b → c → a");
        let e = validate(&decl(&[("a", Some("a"))])).unwrap_err();
        assert_eq!(e, "reports_to cycle: a → a");
        let e = validate(&decl(&[("a", Some("ghost"))])).unwrap_err();
        assert!(
            e.contains("names no declared agent") && e.contains("a → ghost"),
            "{e}"
        );
        for outside in ["supervisor", "role:x", "../x"] {
            let e = validate(&decl(&[("a", Some(outside))])).unwrap_err();
            assert!(e.contains("outside the society"), "{e}");
        }
    }

    #[test]
    fn scopes_admit_by_kind_amount_and_decision_type() {
        let s = Scope {
            kinds: vec!["plan".into(), "decision".into()],
            max_usd: Some(5.0),
            decision_types: vec!["casting".into()],
        };
        assert!(s.admits(&json!({"plan": "p"})).is_ok());
        assert!(s.admits(&json!({"plan": "p", "usd": 4.5})).is_ok());
        assert!(s.admits(&json!({"plan": "p", "usd": 5.5})).is_err());
        assert!(s.admits(&json!({"kind": "route"})).is_err());
        let d = |t: &str, c: f64| json!({"proposal": {"decision_type": t, "context": {"resource_cost": c}}});
        assert!(s.admits(&d("casting", 1.0)).is_ok());
        assert!(s.admits(&d("casting", 9.0)).is_err());
        assert!(s.admits(&d("lighting", 1.0)).is_err());
        assert!(Scope::default().admits(&d("x", 1e9)).is_ok(), "empty: any");
        assert!(Scope {
            kinds: vec!["nope".into()],
            ..Scope::default()
        }
        .check()
        .is_err());
    }
}
