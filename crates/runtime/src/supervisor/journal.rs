//! What the supervisor says on stderr (`daemon.log`, or journald under
//! systemd): every record it writes to `system-events.jsonl` — starts,
//! exits, backoffs, hangs, failures, refusals, sanctions — as one line, at
//! a level that says how much it matters, with the agent and its generation
//! as fields and the record's own fields after the message:
//!
//! ```text
//! 2026-01-01T10:00:00.123456Z  INFO agent started pid=4242 reason=spawn agent=helper-1 gen=1
//! ```
//!
//! The file stays the record (`society logs` reads it); these lines are for
//! people and `journalctl`, so `grep agent=helper-1` finds one agent's.

use serde_json::{Map, Value};
use society_core::kinds::event;
use tracing::Level;

/// Logs one system-event record (its JSON bytes).
pub(super) fn system_event(record: &[u8]) {
    let Ok(Value::Object(rec)) = serde_json::from_slice::<Value>(record) else {
        return;
    };
    let name = rec.get("event").and_then(Value::as_str).unwrap_or("event");
    let agent = rec.get("agent").and_then(Value::as_str).unwrap_or("");
    let gen = rec.get("gen").and_then(Value::as_u64).unwrap_or(0);
    let line = format!("{}{}", name.replace('_', " "), fields(&rec));
    match level(name, &rec) {
        Level::ERROR => tracing::error!(agent = %agent, gen, "{line}"),
        Level::WARN => tracing::warn!(agent = %agent, gen, "{line}"),
        _ => tracing::info!(agent = %agent, gen, "{line}"),
    }
}

/// How much an event matters: a person should act on an error, look at a
/// warning; the rest is the society going about its business.
fn level(name: &str, rec: &Map<String, Value>) -> Level {
    match name {
        event::AGENT_FAILED
        | event::AGENT_BROKEN
        | event::AGENT_SPAWN_FAILED
        | event::AGENT_CONFIG_INVALID
        | event::CURSOR_INCIDENT => Level::ERROR,
        event::AGENT_HUNG | event::SENDER_SANCTIONED | event::ESCALATED => Level::WARN,
        event::AGENT_EXITED if crashed(rec) => Level::WARN,
        _ => Level::INFO,
    }
}

/// An exit nobody asked for: a signal, or a code other than 0 (idle, or
/// stopped) and 3 (someone else holds the folder: adopted).
fn crashed(rec: &Map<String, Value>) -> bool {
    let asked = rec
        .get("stop_reason")
        .and_then(Value::as_str)
        .is_some_and(|r| r != "hung");
    let signal = rec.get("signal").is_some_and(|s| !s.is_null());
    let code = rec.get("code").and_then(Value::as_i64);
    !asked && (signal || code.is_some_and(|c| c != 0 && c != 3))
}

/// The record's own fields as ` key=value` (strings with spaces quoted;
/// nulls, and what the message and fields already say, left out; long
/// values cut).
fn fields(rec: &Map<String, Value>) -> String {
    const SAID: [&str; 6] = ["ts", "event", "agent", "gen", "src", "line"];
    const MAX: usize = 200;
    let mut out = String::new();
    for (key, value) in rec {
        if SAID.contains(&key.as_str()) || value.is_null() {
            continue;
        }
        let mut text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if text.len() > MAX {
            let mut cut = MAX;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push('…');
        }
        let plain = !text.is_empty()
            && !text
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '=');
        if plain {
            out.push_str(&format!(" {key}={text}"));
        } else {
            out.push_str(&format!(" {key}={text:?}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("an object"),
        }
    }

    #[test]
    fn fields_are_key_value_pairs() {
        let rec = map(
            json!({"ts": "t", "event": "agent_started", "agent": "a", "gen": 2,
            "pid": 42, "reason": "spawn", "signal": null, "why": "exit code 1 (error)"}),
        );
        assert_eq!(
            fields(&rec),
            r#" pid=42 reason=spawn why="exit code 1 (error)""#
        );
        let long = map(json!({"body": "x".repeat(500)}));
        assert!(fields(&long).chars().count() < 220, "long values are cut");
        let newline = map(json!({"error": "a\nb"}));
        assert_eq!(fields(&newline), r#" error="a\nb""#, "one line per event");
    }

    #[test]
    fn levels_follow_what_a_person_should_do() {
        let exit = |v: Value| level(event::AGENT_EXITED, &map(v));
        assert_eq!(exit(json!({"code": 0, "stop_reason": null})), Level::INFO);
        assert_eq!(exit(json!({"code": 3})), Level::INFO, "adopted");
        assert_eq!(exit(json!({"adopted": true})), Level::INFO);
        assert_eq!(exit(json!({"code": 1})), Level::WARN);
        assert_eq!(exit(json!({"signal": "SIGKILL"})), Level::WARN);
        assert_eq!(
            exit(json!({"signal": "SIGTERM", "stop_reason": "stop"})),
            Level::INFO
        );
        assert_eq!(
            exit(json!({"signal": "SIGKILL", "stop_reason": "hung"})),
            Level::WARN
        );
        assert_eq!(level(event::AGENT_FAILED, &Map::new()), Level::ERROR);
        assert_eq!(level(event::AGENT_STARTED, &Map::new()), Level::INFO);
    }
}
