//! Routing policy (`[routing]` rules: allow / deny / approve, first match
//! wins) and receiver protection (accepted types and senders, body size,
//! per-sender rate limit, duplicate-body flood detection). Pure decisions;
//! the router acts on them.
//!
//! Rate and flood windows live in memory: after a supervisor restart they
//! start empty, which can only let a few more messages through, never block
//! one that would have passed.

use crate::config::{RouteAction, RoutingConfig};
use society_core::state::Policy;
use society_core::{AgentId, Envelope, Party};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Does `pattern` (a party or `*`) match `party`? `role:R` also matches an
/// agent whose role is R.
fn matches(pattern: &str, party: &Party, role: Option<&str>) -> bool {
    if pattern == "*" || pattern == party.to_string() {
        return true;
    }
    match (pattern.strip_prefix("role:"), role) {
        (Some(r), Some(role)) => r == role,
        _ => false,
    }
}

/// The action for a message, and the 1-based number of the rule that decided
/// (`None`: the default).
pub(crate) fn decide(
    cfg: &RoutingConfig,
    env: &Envelope,
    from_role: Option<&str>,
    to_role: Option<&str>,
) -> (RouteAction, Option<usize>) {
    for (i, rule) in cfg.rules.iter().enumerate() {
        if matches(&rule.from, &env.from, from_role)
            && matches(&rule.to, &env.to, to_role)
            && (rule.kind == "*" || rule.kind == env.kind)
        {
            return (rule.action, Some(i + 1));
        }
    }
    (cfg.default, None)
}

/// Sliding windows per receiver.
#[derive(Default)]
pub(crate) struct Guard {
    rate: HashMap<(AgentId, String), VecDeque<Instant>>,
    bodies: HashMap<(AgentId, u64), VecDeque<Instant>>,
}

impl Guard {
    /// Accepts the message for `receiver` (recording it) or says why not.
    pub(crate) fn admit(
        &mut self,
        now: Instant,
        receiver: &AgentId,
        policy: &Policy,
        env: &Envelope,
        sender_role: Option<&str>,
    ) -> Result<(), String> {
        if !policy.accept_types.is_empty() && !policy.accept_types.contains(&env.kind) {
            return Err(format!(
                "type {:?} is not accepted (accept_types: {:?})",
                env.kind, policy.accept_types
            ));
        }
        if !policy.accept_from.is_empty()
            && !policy
                .accept_from
                .iter()
                .any(|p| matches(p, &env.from, sender_role))
        {
            return Err(format!(
                "sender {} is not accepted (accept_from: {:?})",
                env.from, policy.accept_from
            ));
        }
        let body = serde_json::to_vec(&env.body).unwrap_or_default();
        if body.len() > policy.max_body {
            return Err(format!(
                "body of {} bytes exceeds max_body ({} bytes)",
                body.len(),
                policy.max_body
            ));
        }
        let minute = Duration::from_secs(60);
        let sent = self
            .rate
            .entry((receiver.clone(), env.from.to_string()))
            .or_default();
        prune(sent, now, minute);
        if sent.len() >= policy.rate_limit as usize {
            return Err(format!(
                "rate limit: more than {} messages per minute from {}",
                policy.rate_limit, env.from
            ));
        }
        let hash = society_core::id::stable_hash(&body);
        let same = self.bodies.entry((receiver.clone(), hash)).or_default();
        prune(same, now, policy.flood_window);
        if same.len() >= policy.flood_threshold as usize {
            return Err(format!(
                "flood: more than {} identical bodies within {}",
                policy.flood_threshold,
                humantime::format_duration(policy.flood_window)
            ));
        }
        sent.push_back(now);
        same.push_back(now);
        Ok(())
    }
}

fn prune(q: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while q.front().is_some_and(|t| now.duration_since(*t) >= window) {
        q.pop_front();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::RouteRule;
    use serde_json::json;

    fn env(from: &str, to: &str, kind: &str, body: serde_json::Value) -> Envelope {
        Envelope::new(
            from.parse().expect("party"),
            to.parse().expect("party"),
            kind,
            body,
        )
    }

    #[test]
    fn first_matching_rule_wins_else_default() {
        let rule = |from: &str, to: &str, kind: &str, action| RouteRule {
            from: from.into(),
            to: to.into(),
            kind: kind.into(),
            action,
        };
        let cfg = RoutingConfig {
            default: RouteAction::Deny,
            rules: vec![
                rule("role:audio", "orchestrator", "result", RouteAction::Approve),
                rule("*", "role:quality", "*", RouteAction::Allow),
                rule("audio", "*", "*", RouteAction::Deny),
            ],
        };
        let e = env("audio", "orchestrator", "result", json!({}));
        assert_eq!(
            decide(&cfg, &e, Some("audio"), None),
            (RouteAction::Approve, Some(1))
        );
        let e = env("audio", "q1", "task", json!({}));
        assert_eq!(
            decide(&cfg, &e, Some("audio"), Some("quality")),
            (RouteAction::Allow, Some(2))
        );
        let e = env("audio", "x", "task", json!({}));
        assert_eq!(
            decide(&cfg, &e, Some("audio"), Some("x")),
            (RouteAction::Deny, Some(3))
        );
        let e = env("other", "x", "task", json!({}));
        assert_eq!(
            decide(&cfg, &e, Some("other"), Some("x")),
            (RouteAction::Deny, None)
        );
    }

    #[test]
    fn guard_refuses_by_type_sender_size_rate_and_flood() {
        let rx: AgentId = AgentId::new("rx").expect("id");
        let t = Instant::now();
        let mut g = Guard::default();
        let policy = Policy {
            accept_types: vec!["task".into()],
            ..Policy::default()
        };
        assert!(g
            .admit(t, &rx, &policy, &env("a", "rx", "chat", json!({})), None)
            .unwrap_err()
            .contains("type"));
        let policy = Policy {
            accept_from: vec!["role:boss".into()],
            ..Policy::default()
        };
        assert!(g
            .admit(
                t,
                &rx,
                &policy,
                &env("a", "rx", "task", json!({})),
                Some("boss")
            )
            .is_ok());
        assert!(g
            .admit(
                t,
                &rx,
                &policy,
                &env("a", "rx", "task", json!({})),
                Some("peon")
            )
            .unwrap_err()
            .contains("sender"));
        let policy = Policy {
            max_body: 10,
            ..Policy::default()
        };
        assert!(g
            .admit(
                t,
                &rx,
                &policy,
                &env("a", "rx", "t", json!({"x": "0123456789"})),
                None
            )
            .unwrap_err()
            .contains("max_body"));

        let mut g = Guard::default();
        let policy = Policy {
            rate_limit: 5,
            flood_threshold: 100,
            ..Policy::default()
        };
        for i in 0..5 {
            assert!(g
                .admit(t, &rx, &policy, &env("a", "rx", "t", json!({"i": i})), None)
                .is_ok());
        }
        assert!(g
            .admit(t, &rx, &policy, &env("a", "rx", "t", json!({"i": 9})), None)
            .unwrap_err()
            .contains("rate"));
        assert!(
            g.admit(t, &rx, &policy, &env("b", "rx", "t", json!({"i": 9})), None)
                .is_ok(),
            "per sender"
        );
        let later = t + Duration::from_secs(61);
        assert!(
            g.admit(
                later,
                &rx,
                &policy,
                &env("a", "rx", "t", json!({"i": 10})),
                None
            )
            .is_ok(),
            "window slides"
        );

        let mut g = Guard::default();
        let policy = Policy::default();
        for _ in 0..3 {
            assert!(g
                .admit(
                    t,
                    &rx,
                    &policy,
                    &env("a", "rx", "t", json!({"same": 1})),
                    None
                )
                .is_ok());
        }
        assert!(g
            .admit(
                t,
                &rx,
                &policy,
                &env("b", "rx", "t", json!({"same": 1})),
                None
            )
            .unwrap_err()
            .contains("flood"));
    }
}
