//! Hard budgets, checked before every model call.
//!
//! The guarantee, per scope (the agent's own `budget`, and the society's
//! `[budget]` summed over every agent's `costs.jsonl`; per UTC day and in
//! total; in tokens and in USD):
//!
//! 1. No call starts once `spent >= limit` (limit = configured + extensions).
//! 2. No call starts unless the budget has room for the estimated prompt and
//!    at least one output token. The estimate is the larger of the request
//!    size / 4 and the previous answer's `input + output` tokens in this
//!    conversation (the next prompt contains all of it).
//! 3. The call's `max_tokens` is capped to the room left after that estimate,
//!    so the *output* of one answer can never overshoot.
//!
//! So a budget is exceeded only when the provider counts more prompt tokens
//! than estimated, by at most that difference on one call; with several
//! agents running at once, the society budget by at most that per agent.
//! Every overshoot is visible in `costs.jsonl`, and rule 1 stops the next call.
//!
//! A server that reports no `usage` would otherwise make every call free and
//! every budget endless: such an answer is charged an estimate instead
//! ([`estimate`]), marked `estimated: true` in its `usage` record.

use super::config::{LlmConfig, Price};
use super::conversation::{ModelReply, Usage};
use super::ledger::Tally;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    Agent,
    Society,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    TokensPerDay,
    TokensTotal,
    UsdPerDay,
    UsdTotal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scope {
    pub level: Level,
    pub kind: Kind,
}

const KINDS: [(Kind, &str); 4] = [
    (Kind::TokensPerDay, "tokens_per_day"),
    (Kind::TokensTotal, "tokens_total"),
    (Kind::UsdPerDay, "usd_per_day"),
    (Kind::UsdTotal, "usd_total"),
];

impl Scope {
    /// `agent.tokens_per_day`, `society.usd_total`, ...: the `scope` field of
    /// ledger records.
    pub fn name(self) -> String {
        let level = match self.level {
            Level::Agent => "agent",
            Level::Society => "society",
        };
        let kind = KINDS
            .iter()
            .find(|(k, _)| *k == self.kind)
            .map_or("", |(_, n)| n);
        format!("{level}.{kind}")
    }

    pub fn parse(s: &str) -> Option<Scope> {
        let (level, kind) = s.split_once('.')?;
        let level = match level {
            "agent" => Level::Agent,
            "society" => Level::Society,
            _ => return None,
        };
        let kind = KINDS.iter().find(|(_, n)| *n == kind)?.0;
        Some(Scope { level, kind })
    }

    pub fn daily(self) -> bool {
        matches!(self.kind, Kind::TokensPerDay | Kind::UsdPerDay)
    }

    fn usd(self) -> bool {
        matches!(self.kind, Kind::UsdPerDay | Kind::UsdTotal)
    }

    /// "daily token budget of writer", "society-wide total USD budget".
    pub fn describe(self, agent: &str) -> String {
        let period = if self.daily() { "daily" } else { "total" };
        let unit = if self.usd() { "USD" } else { "token" };
        match self.level {
            Level::Agent => format!("{period} {unit} budget of {agent}"),
            Level::Society => format!("society-wide {period} {unit} budget"),
        }
    }

    /// An amount in this scope's unit, for people.
    pub fn amount(self, value: f64) -> String {
        if self.usd() {
            format!("${value:.4}")
        } else {
            format!("{value:.0} tokens")
        }
    }
}

/// A budget that leaves no room for the next call.
#[derive(Debug, Clone, PartialEq)]
pub struct Exceeded {
    pub scope: Scope,
    pub spent: f64,
    /// Configured limit plus extensions.
    pub limit: f64,
    /// What approving adds: the configured limit again.
    pub extend_by: f64,
}

/// May the next call go, and with which `max_tokens`?
pub fn check(
    cfg: &LlmConfig,
    mine: &Tally,
    society: &Tally,
    estimated_input: u64,
) -> Result<u64, Exceeded> {
    let mut cap = cfg.max_tokens;
    for (level, limits, tally) in [
        (Level::Agent, &cfg.budget, mine),
        (Level::Society, &cfg.society_budget, society),
    ] {
        let entries = [
            (
                Kind::TokensPerDay,
                limits.tokens_per_day.map(|l| l as f64),
                tally.tokens_today as f64,
            ),
            (
                Kind::TokensTotal,
                limits.tokens_total.map(|l| l as f64),
                tally.tokens_total as f64,
            ),
            (Kind::UsdPerDay, limits.usd_per_day, tally.usd_today),
            (Kind::UsdTotal, limits.usd_total, tally.usd_total),
        ];
        for (kind, limit, spent) in entries {
            let Some(configured) = limit else { continue };
            let scope = Scope { level, kind };
            let ext = tally.extended.get(&scope).copied().unwrap_or_default();
            let limit = configured + if scope.usd() { ext.1 } else { ext.0 as f64 };
            let exceeded = Exceeded {
                scope,
                spent,
                limit,
                extend_by: configured,
            };
            let room = output_room(scope, limit - spent, estimated_input, cfg.prices);
            if spent >= limit || room < 1 {
                return Err(exceeded);
            }
            cap = cap.min(room);
        }
    }
    Ok(cap)
}

/// Did the server count the answer's tokens? Either provider's field names
/// (`prompt_tokens`/`completion_tokens`, `input_tokens`/`output_tokens`).
pub fn usage_reported(answer: &Value) -> bool {
    [
        "prompt_tokens",
        "completion_tokens",
        "input_tokens",
        "output_tokens",
    ]
    .iter()
    .any(|k| {
        answer
            .pointer(&format!("/usage/{k}"))
            .is_some_and(Value::is_u64)
    })
}

/// The tokens of an answer the server did not count: bytes / 4, rounded up,
/// of the request's body (system prompt, messages, tools) for the input and
/// of the answer's text and tool calls (names and arguments) for the output.
/// Rough (about right for English, low for other scripts) but never 0.
pub fn estimate(request_bytes: u64, reply: &ModelReply) -> Usage {
    let calls: u64 = reply
        .calls
        .iter()
        .map(|c| (c.name.len() + c.args.to_string().len()) as u64)
        .sum();
    let text = reply.text.as_ref().map_or(0, |t| t.len() as u64);
    Usage {
        input: request_bytes.div_ceil(4).max(1),
        output: (text + calls).div_ceil(4).max(1),
    }
}

/// Output tokens that fit in `left` (tokens or USD) after the estimated prompt.
fn output_room(scope: Scope, left: f64, input: u64, price: Option<Price>) -> u64 {
    if !scope.usd() {
        return (left - input as f64).max(0.0).floor() as u64;
    }
    // Config parsing guarantees a price whenever a USD budget applies.
    let Some(p) = price else { return u64::MAX };
    let after_input = left - input as f64 * p.input / 1e6;
    if p.output <= 0.0 {
        return if after_input > 0.0 { u64::MAX } else { 0 };
    }
    (after_input / (p.output / 1e6)).max(0.0).floor() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(budget: serde_json::Value, society: serde_json::Value) -> LlmConfig {
        LlmConfig::parse(&json!({"kind": "llm", "provider": "openai", "model": "m",
            "max_tokens": 1000, "budget": budget, "society_budget": society,
            "prices": {"input": 1.0, "output": 2.0}}))
        .expect("valid")
    }

    #[test]
    fn caps_output_to_the_room_left_and_stops_at_the_limit() {
        let c = cfg(json!({"tokens_total": 5000}), json!({}));
        let mut t = Tally::default();
        assert_eq!(check(&c, &t, &Tally::default(), 100), Ok(1000));
        t.tokens_total = 4000;
        assert_eq!(check(&c, &t, &Tally::default(), 300), Ok(700));
        t.tokens_total = 4699;
        assert_eq!(check(&c, &t, &Tally::default(), 300), Ok(1));
        t.tokens_total = 4700;
        let e = check(&c, &t, &Tally::default(), 300).expect_err("no room for one token");
        assert_eq!(e.scope.name(), "agent.tokens_total");
        t.tokens_total = 5000;
        assert!(
            check(&c, &t, &Tally::default(), 0).is_err(),
            "spent >= limit"
        );
        t.extended.insert(e.scope, (5000, 0.0));
        assert_eq!(check(&c, &t, &Tally::default(), 300), Ok(1000));
    }

    #[test]
    fn an_answer_without_usage_is_estimated_from_its_bytes() {
        use super::super::conversation::ToolCall;
        let counted = json!({"usage": {"prompt_tokens": 0, "completion_tokens": 0}});
        assert!(
            usage_reported(&counted),
            "a reported 0 is the server's word"
        );
        assert!(usage_reported(&json!({"usage": {"input_tokens": 5}})));
        assert!(!usage_reported(&json!({"choices": []})));
        assert!(!usage_reported(&json!({"usage": null})));
        let reply = ModelReply {
            text: Some("12345678".into()),
            calls: vec![ToolCall {
                id: "c".into(),
                name: "finish".into(),
                args: json!({}),
            }],
            usage: Usage::default(),
            thinking: vec![],
            stop_reason: None,
            truncated: false,
        };
        // 8 text bytes + 6 name + 2 args = 16 -> 4; 4001 request bytes -> 1001.
        assert_eq!(
            estimate(4001, &reply),
            Usage {
                input: 1001,
                output: 4
            }
        );
        let empty = ModelReply {
            text: None,
            calls: vec![],
            usage: Usage::default(),
            thinking: vec![],
            stop_reason: None,
            truncated: false,
        };
        assert_eq!(
            estimate(0, &empty),
            Usage {
                input: 1,
                output: 1
            }
        );
    }

    #[test]
    fn usd_and_society_scopes() {
        // $0.01 left, prompt 2000 tokens at $1/M = $0.002, output at $2/M: 4000 tokens.
        let c = cfg(
            json!({"usd_per_day": 0.02}),
            json!({"tokens_per_day": 100000}),
        );
        let mine = Tally {
            usd_today: 0.01,
            ..Tally::default()
        };
        assert_eq!(check(&c, &mine, &Tally::default(), 2000), Ok(1000));
        let c = cfg(json!({"usd_per_day": 0.0125}), json!({}));
        let cap = check(&c, &mine, &Tally::default(), 2000).expect("room for ~250 tokens");
        assert!((249..=250).contains(&cap), "{cap}");
        let c = cfg(json!({"usd_per_day": 0.0115}), json!({}));
        assert!(
            check(&c, &mine, &Tally::default(), 2000).is_err(),
            "the prompt alone does not fit"
        );
        let society = Tally {
            tokens_today: 100000,
            ..Tally::default()
        };
        let c = cfg(json!({}), json!({"tokens_per_day": 100000}));
        let e = check(&c, &Tally::default(), &society, 10).expect_err("society budget spent");
        assert_eq!(e.scope.name(), "society.tokens_per_day");
        assert_eq!(e.scope.describe("w"), "society-wide daily token budget");
        assert_eq!(
            Scope::parse("agent.usd_total").map(Scope::name).as_deref(),
            Some("agent.usd_total")
        );
    }
}
