//! Routing policy (`[routing]` rules: allow / deny / approve, first match
//! wins). A pure decision; the router acts on it. Receiver protection and
//! sanctions are in `guard.rs`.

use crate::config::{RouteAction, RoutingConfig};
use society_core::{Envelope, Party};

/// Does `pattern` (a party or `*`) match `party`? `role:R` also matches an
/// agent whose role is R.
pub(crate) fn matches(pattern: &str, party: &Party, role: Option<&str>) -> bool {
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
            gates: Vec::new(),
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
}
