//! The v1 message envelope shared by every inbox, outbox and mirror.
//!
//! ```json
//! {"v":1,"id":"<ULID>","ts":"<RFC3339 ms>","from":"<party>","to":"<party>",
//!  "type":"<type>","case":null,"reply_to":null,"gen":0,"body":{}}
//! ```

use crate::id::{CaseId, MsgId, Party};
use crate::ENVELOPE_VERSION;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    pub v: u32,
    pub id: MsgId,
    pub ts: String,
    pub from: Party,
    pub to: Party,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub case: Option<CaseId>,
    #[serde(default)]
    pub reply_to: Option<MsgId>,
    #[serde(default)]
    pub gen: u64,
    /// Agent hops since the orchestrator (or a timer) started the
    /// conversation: an agent's outputs carry its input's `hops + 1`. The
    /// router dead-letters a message past the sender's `max_hops`, which cuts
    /// any loop, however its bodies vary. Absent means 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hops: u32,
    /// Capabilities the recipient must declare (`capabilities` in its
    /// config) when the message is addressed to `role:<r>`: the router picks
    /// among the agents of the role that have all of them. Absent: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    pub body: serde_json::Value,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Why a line is not a valid envelope. Used as the dead-letter reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("not valid JSON: {0}")]
    Json(String),
    #[error("not a valid envelope: {0}")]
    Shape(String),
    #[error("unsupported envelope version {0} (expected {ENVELOPE_VERSION})")]
    Version(u32),
    #[error("invalid type {0:?}: types match [a-z0-9_.-]{{1,64}}")]
    Type(String),
    #[error("invalid ts {0:?}: expected RFC 3339 UTC")]
    Ts(String),
    #[error("invalid need {0:?}: capabilities match [a-z0-9_.-]{{1,64}}")]
    Need(String),
    #[error("body must be a JSON object")]
    Body,
}

impl Envelope {
    /// A new message with a fresh id and the current time.
    pub fn new(from: Party, to: Party, kind: impl Into<String>, body: serde_json::Value) -> Self {
        Envelope {
            v: ENVELOPE_VERSION,
            id: MsgId::generate(),
            ts: crate::time::now_rfc3339(),
            from,
            to,
            kind: kind.into(),
            case: None,
            reply_to: None,
            gen: 0,
            hops: 0,
            needs: Vec::new(),
            body,
        }
    }

    /// Parses and validates one line (without its trailing newline).
    pub fn parse(line: &[u8]) -> Result<Envelope, EnvelopeError> {
        let value: serde_json::Value =
            serde_json::from_slice(line).map_err(|e| EnvelopeError::Json(e.to_string()))?;
        let env: Envelope =
            serde_json::from_value(value).map_err(|e| EnvelopeError::Shape(e.to_string()))?;
        env.validate()?;
        Ok(env)
    }

    pub fn validate(&self) -> Result<(), EnvelopeError> {
        if self.v != ENVELOPE_VERSION {
            return Err(EnvelopeError::Version(self.v));
        }
        if !valid_type(&self.kind) {
            return Err(EnvelopeError::Type(self.kind.clone()));
        }
        if crate::time::parse_rfc3339(&self.ts).is_none() {
            return Err(EnvelopeError::Ts(self.ts.clone()));
        }
        if !self.body.is_object() {
            return Err(EnvelopeError::Body);
        }
        if let Some(bad) = self.needs.iter().find(|n| !valid_type(n)) {
            return Err(EnvelopeError::Need(bad.clone()));
        }
        Ok(())
    }

    /// The record bytes as written to a file, without the trailing newline.
    pub fn to_line(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an Envelope always serialises: all fields are plain data")
    }
}

/// A message's `needs` (capability names, like types): the first bad one, said.
pub fn check_needs(needs: &[String]) -> Result<(), String> {
    match needs.iter().find(|n| !valid_type(n)) {
        Some(bad) => Err(format!(
            "need {bad:?} is not a capability name: use [a-z0-9_.-], at most 64"
        )),
        None => Ok(()),
    }
}

pub fn valid_type(kind: &str) -> bool {
    !kind.is_empty()
        && kind.len() <= 64
        && kind.bytes().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'.' | b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_and_validates() {
        let env = Envelope::new(
            Party::Orchestrator,
            "research".parse().expect("valid party"),
            "task",
            json!({"text": "hi"}),
        );
        let line = env.to_line();
        assert_eq!(Envelope::parse(&line).expect("valid"), env);
    }

    #[test]
    fn numbers_in_a_body_survive_a_hop() {
        // Without serde_json's float_roundtrip the second parse lands one
        // ULP off (3.7373699999999996e-35).
        let line = br#"{"v":1,"id":"01JF0000000000000000000003","ts":"2026-11-01T10:00:02.123Z","from":"orchestrator","to":"research","type":"task","body":{"x":373737E-40}}"#;
        let env = Envelope::parse(line).expect("valid");
        assert_eq!(Envelope::parse(&env.to_line()).expect("valid"), env);
    }

    #[test]
    fn rejects_bad_lines_with_reasons() {
        assert!(matches!(
            Envelope::parse(b"{not json"),
            Err(EnvelopeError::Json(_))
        ));
        assert!(matches!(
            Envelope::parse(b"[1,2]"),
            Err(EnvelopeError::Shape(_))
        ));
        let mut env = Envelope::new(Party::Orchestrator, Party::Supervisor, "t", json!({}));
        env.kind = "Bad Type".into();
        assert!(matches!(
            Envelope::parse(&env.to_line()),
            Err(EnvelopeError::Type(_))
        ));
        env.kind = "t".into();
        env.body = json!("str");
        assert!(matches!(
            Envelope::parse(&env.to_line()),
            Err(EnvelopeError::Body)
        ));
    }
}
