//! A `debate_request` body, checked field by field. A request with a field
//! missing or of the wrong shape is refused with a reason that names the
//! field: the supervisor never guesses a limit or a participant.

use serde_json::{Map, Value};
use society_core::governance::debate::Position;
use society_core::{AgentId, Party};

#[derive(Debug, Clone, PartialEq)]
pub(in crate::supervisor) struct DebateRequest {
    pub decision: String,
    pub agent: AgentId,
    pub decision_type: String,
    pub plan: Value,
    pub position: Position,
    pub rationale: Value,
    pub alternatives: Value,
    /// As asked: agents and `role:<r>` parties, besides the proposer.
    pub participants: Vec<Party>,
    pub time_limit_ms: u64,
    pub threshold: f64,
    pub min_interval_ms: u64,
    pub revision: u64,
    pub proposal: Value,
    pub parked: Value,
    pub then: Value,
}

impl DebateRequest {
    pub fn parse(body: &Value) -> Result<DebateRequest, String> {
        let body = body
            .as_object()
            .ok_or("the body is not an object".to_string())?;
        let text = |k: &str| -> Result<String, String> {
            match body.get(k) {
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
                Some(Value::String(_)) => Err(format!("{k} is empty")),
                Some(v) => Err(format!("{k} must be a string, got {v}")),
                None => Err(format!("{k} is missing")),
            }
        };
        let agent = text("agent")?;
        let agent = AgentId::new(&agent).map_err(|e| format!("agent {agent:?}: {e}"))?;
        let plan = match body.get("plan") {
            Some(p @ (Value::Object(_) | Value::String(_))) => p.clone(),
            Some(p) => return Err(format!("plan must be an object or a string, got {p}")),
            None => return Err("plan is missing".into()),
        };
        let position = match body.get("position") {
            Some(Value::Object(p)) => p.clone(),
            Some(p) => {
                return Err(format!(
                    "position must be an object {{key: value}}, got {p}"
                ))
            }
            None => return Err("position is missing".into()),
        };
        let participants = match body.get("participants") {
            Some(Value::Array(list)) => list
                .iter()
                .map(|p| match p.as_str().map(str::parse::<Party>) {
                    Some(Ok(party @ (Party::Agent(_) | Party::Role(_)))) => Ok(party),
                    _ => Err(format!(
                        "participants: {p} is neither an agent id nor role:<role>"
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(p) => return Err(format!("participants must be a list, got {p}")),
            None => return Err("participants is missing".into()),
        };
        let time_limit_ms = whole(body, "time_limit_ms", 1)?;
        let min_interval_ms = whole(body, "min_interval_ms", 1)?;
        let revision = whole(body, "revision", 1)?;
        let threshold = match body.get("threshold") {
            Some(t) => match t.as_f64() {
                Some(x) if x > 0.0 && x <= 1.0 => x,
                _ => return Err(format!("threshold must be a number in (0, 1], got {t}")),
            },
            None => return Err("threshold is missing".into()),
        };
        let rationale = match body.get("rationale") {
            None | Some(Value::Null) => Value::Null,
            Some(r @ Value::String(_)) => r.clone(),
            Some(r) => return Err(format!("rationale must be a string, got {r}")),
        };
        let alternatives = match body.get("alternatives") {
            None | Some(Value::Null) => Value::Array(Vec::new()),
            Some(a @ Value::Array(_)) => a.clone(),
            Some(a) => return Err(format!("alternatives must be a list, got {a}")),
        };
        let copy = |k: &str| body.get(k).cloned().unwrap_or(Value::Null);
        Ok(DebateRequest {
            decision: text("decision")?,
            agent,
            decision_type: text("decision_type")?,
            plan,
            position,
            rationale,
            alternatives,
            participants,
            time_limit_ms,
            threshold,
            min_interval_ms,
            revision,
            proposal: copy("proposal"),
            parked: copy("parked"),
            then: copy("then"),
        })
    }
}

/// A whole number field, at least `min`.
fn whole(body: &Map<String, Value>, k: &str, min: u64) -> Result<u64, String> {
    match body.get(k) {
        Some(v) => match v.as_u64() {
            Some(n) if n >= min => Ok(n),
            _ => Err(format!("{k} must be a whole number ≥ {min}, got {v}")),
        },
        None => Err(format!("{k} is missing")),
    }
}
