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
        // Nesting is bounded here: `from_slice` refuses a document nested
        // deeper than serde_json's recursion limit (128) before it can use
        // much stack, so every `Value` in the runtime is at most that deep.
        let value: serde_json::Value = serde_json::from_slice(line)
            .map_err(|e| EnvelopeError::Json(excerpt(&e.to_string(), REASON_MAX)))?;
        let env: Envelope = serde_json::from_value(value)
            .map_err(|e| EnvelopeError::Shape(excerpt(&e.to_string(), REASON_MAX)))?;
        env.validate()?;
        Ok(env)
    }

    pub fn validate(&self) -> Result<(), EnvelopeError> {
        if self.v != ENVELOPE_VERSION {
            return Err(EnvelopeError::Version(self.v));
        }
        if !valid_type(&self.kind) {
            return Err(EnvelopeError::Type(excerpt(&self.kind, VALUE_MAX)));
        }
        if crate::time::parse_rfc3339(&self.ts).is_none() {
            return Err(EnvelopeError::Ts(excerpt(&self.ts, VALUE_MAX)));
        }
        if !self.body.is_object() {
            return Err(EnvelopeError::Body);
        }
        if let Some(bad) = self.needs.iter().find(|n| !valid_type(n)) {
            return Err(EnvelopeError::Need(excerpt(bad, VALUE_MAX)));
        }
        Ok(())
    }

    /// The record bytes as written to a file, without the trailing newline.
    pub fn to_line(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an Envelope always serialises: all fields are plain data")
    }
}

/// Longest bad value quoted in an [`EnvelopeError`].
const VALUE_MAX: usize = 128;
/// Longest parser message kept in an [`EnvelopeError`] (serde quotes the
/// offending value: a megabyte-long `type` must not make a megabyte-long
/// reason, and a dead-letter record over `max_record`).
const REASON_MAX: usize = 512;

/// At most `max` bytes of `text`, cut at a character boundary and marked
/// with `…`: for reasons and excerpts of hostile input put into records.
pub fn excerpt(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
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

    /// Hostile values make short reasons: a dead-letter record quoting one
    /// stays far below `max_record`.
    #[test]
    fn reasons_quote_at_most_an_excerpt_of_a_bad_value() {
        let mut env = Envelope::new(Party::Orchestrator, Party::Supervisor, "t", json!({}));
        env.kind = "A".repeat(1 << 20);
        let reason = Envelope::parse(&env.to_line())
            .expect_err("bad type")
            .to_string();
        assert!(reason.len() < 300, "{} bytes", reason.len());
        env.kind = "t".into();
        env.ts = "é".repeat(1 << 19);
        let reason = Envelope::parse(&env.to_line())
            .expect_err("bad ts")
            .to_string();
        assert!(reason.len() < 300 && reason.contains('…'), "{reason}");
        // serde quotes a wrong-typed value whole.
        let line = format!("{{\"v\":\"{}\"}}", "9".repeat(1 << 20));
        let reason = Envelope::parse(line.as_bytes())
            .expect_err("bad v")
            .to_string();
        assert!(reason.len() < 600, "{} bytes", reason.len());
    }

    /// A document nested deeper than serde_json's recursion limit is refused
    /// by the parser — quickly, and without exhausting the stack — however
    /// deep it goes: every `Value` the runtime walks is at most that deep.
    #[test]
    fn nesting_is_bounded_by_the_parser() {
        for deep in [
            format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
            format!("{}1{}", "{\"a\":".repeat(100_000), "}".repeat(100_000)),
        ] {
            let line = format!(
                r#"{{"v":1,"id":"01J00000000000000000000000","ts":"2025-01-01T00:00:00.000Z","from":"orchestrator","to":"supervisor","type":"t","body":{{"deep":{deep}}}}}"#
            );
            let err = Envelope::parse(line.as_bytes()).expect_err("too deep");
            assert!(
                err.to_string().contains("recursion limit exceeded"),
                "{err}"
            );
        }
        // 120 levels under the body still parse.
        let ok = format!(
            r#"{{"v":1,"id":"01J00000000000000000000000","ts":"2025-01-01T00:00:00.000Z","from":"orchestrator","to":"supervisor","type":"t","body":{{"deep":{}{}}}}}"#,
            "[".repeat(120),
            "]".repeat(120)
        );
        assert!(Envelope::parse(ok.as_bytes()).is_ok());
    }
}
