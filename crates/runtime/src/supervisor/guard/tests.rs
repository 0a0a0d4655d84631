//! The guard's decisions, table by table.

#![allow(clippy::unwrap_used)]
use super::*;
use serde_json::json;

fn env(from: &str, to: &str, kind: &str, body: serde_json::Value) -> Envelope {
    Envelope::new(
        from.parse().expect("party"),
        to.parse().expect("party"),
        kind,
        body,
    )
}

fn rx() -> AgentId {
    AgentId::new("rx").expect("id")
}

/// Checks and commits each message on its own, like one batch each.
fn judge(g: &mut Guard, now: u64, policy: &Policy, e: &Envelope) -> Verdict {
    let mut txn = GuardTxn::default();
    let v = g.check(&mut txn, now, &rx(), policy, e, None);
    g.apply(txn);
    v
}

#[test]
fn refuses_by_type_sender_and_size() {
    let mut g = Guard::default();
    let policy = Policy {
        accept_types: vec!["task".into()],
        ..Policy::default()
    };
    let v = judge(&mut g, 0, &policy, &env("a", "rx", "chat", json!({})));
    assert!(
        matches!(v, Verdict::Refuse { ref reason, .. } if reason.contains("type")),
        "{v:?}"
    );
    let policy = Policy {
        accept_from: vec!["role:boss".into()],
        ..Policy::default()
    };
    let mut txn = GuardTxn::default();
    let boss = g.check(
        &mut txn,
        0,
        &rx(),
        &policy,
        &env("b", "rx", "task", json!({})),
        Some("boss"),
    );
    assert_eq!(boss, Verdict::Admit);
    let peon = g.check(
        &mut txn,
        0,
        &rx(),
        &policy,
        &env("c", "rx", "task", json!({})),
        Some("peon"),
    );
    assert!(matches!(peon, Verdict::Refuse { ref reason, .. } if reason.contains("sender")));
    let policy = Policy {
        max_body: 10,
        ..Policy::default()
    };
    let v = judge(
        &mut g,
        0,
        &policy,
        &env("d", "rx", "t", json!({"x": "0123456789"})),
    );
    assert!(matches!(v, Verdict::Refuse { ref reason, .. } if reason.contains("max_body")));
}

#[test]
fn the_default_bucket_paces_but_never_refuses_a_fast_pipeline() {
    let mut g = Guard::default();
    let policy = Policy::default();
    let (rate, burst) = policy.rate();
    // A burst of distinct messages within one millisecond.
    let mut txn = GuardTxn::default();
    for i in 0..burst {
        let e = env("a", "rx", "t", json!({"i": i}));
        assert_eq!(
            g.check(&mut txn, 1_000, &rx(), &policy, &e, None),
            Verdict::Admit
        );
    }
    let e = env("a", "rx", "t", json!({"i": "next"}));
    let v = g.check(&mut txn, 1_000, &rx(), &policy, &e, None);
    let Verdict::Pace { until } = v else {
        panic!("over the burst the sender is paced: {v:?}")
    };
    assert_eq!(until, 1_000 + (1000.0 / rate).ceil() as u64);
    g.apply(txn);
    // Once the bucket refilled, the message passes: nothing was refused.
    let mut txn = GuardTxn::default();
    assert_eq!(
        g.check(&mut txn, until, &rx(), &policy, &e, None),
        Verdict::Admit
    );
    assert!(g.state.senders.is_empty(), "pacing is not a violation");
    // 100 messages a second forever never wait.
    let mut g = Guard::default();
    for i in 0..5_000u64 {
        let e = env("a", "rx", "t", json!({"i": i}));
        assert_eq!(judge(&mut g, 2_000 + i * 10, &policy, &e), Verdict::Admit);
    }
}

#[test]
fn the_deprecated_per_minute_limit_still_means_per_minute() {
    let policy = Policy {
        rate_limit: Some(120),
        ..Policy::default()
    };
    assert_eq!(policy.rate(), (2.0, 120));
    // 60 was the old default, written into every config.json: read as unset.
    let old = Policy {
        rate_limit: Some(60),
        ..Policy::default()
    };
    assert_eq!(old.rate(), Policy::default().rate());
    assert!(Policy {
        rate_burst: 0,
        ..Policy::default()
    }
    .check()
    .is_err());
    assert!(Policy {
        rate_per_sec: 0.0,
        ..Policy::default()
    }
    .check()
    .is_err());
}

#[test]
fn flood_counts_only_committed_copies() {
    let mut g = Guard::default();
    let policy = Policy::default();
    let same = env("a", "rx", "t", json!({"same": 1}));
    // A batch that never committed leaves no trace.
    let mut lost = GuardTxn::default();
    for _ in 0..3 {
        assert_eq!(
            g.check(&mut lost, 0, &rx(), &policy, &same, None),
            Verdict::Admit
        );
    }
    drop(lost);
    for _ in 0..3 {
        assert_eq!(judge(&mut g, 0, &policy, &same), Verdict::Admit);
    }
    // The same body from another sender is not a repeat.
    assert_eq!(
        judge(&mut g, 0, &policy, &env("b", "rx", "t", json!({"same": 1}))),
        Verdict::Admit
    );
    let v = judge(&mut g, 0, &policy, &same);
    assert!(
        matches!(v, Verdict::Refuse { ref reason, .. } if reason.starts_with("flood")),
        "{v:?}"
    );
    // Nor is an answer to another message.
    let mut answer = same.clone();
    answer.reply_to = Some(society_core::MsgId::generate());
    assert_eq!(judge(&mut g, 0, &policy, &answer), Verdict::Admit);
    // Outside the window the body is new again.
    let later = policy.flood_window.as_millis() as u64;
    assert_eq!(judge(&mut g, later, &policy, &same), Verdict::Admit);
}

#[test]
fn sanctions_escalate_at_3_5_and_10_and_unblock_lifts_them() {
    let mut g = Guard::default();
    let policy = Policy {
        accept_types: vec!["task".into()],
        ..Policy::default()
    };
    let bad = |i: u32| env("spammer", "rx", "chat", json!({"i": i}));
    let mut now = 0;
    let mut sanctions = Vec::new();
    for i in 1..=10 {
        match judge(&mut g, now, &policy, &bad(i)) {
            Verdict::Refuse { sanction, .. } => {
                if let Some(s) = sanction {
                    // Served the block; the next refusals count on.
                    assert!(judge(&mut g, now, &policy, &bad(100 + i)) != Verdict::Admit);
                    now = if s.until == UNTIL_LIFTED {
                        now
                    } else {
                        s.until
                    };
                    sanctions.push((i, s.level, s.until == UNTIL_LIFTED));
                }
            }
            other => panic!("refusal {i}: {other:?}"),
        }
    }
    assert_eq!(sanctions, [(3, 1, false), (5, 2, false), (10, 3, true)]);
    let blocked = judge(
        &mut g,
        now + 365 * 86_400_000,
        &policy,
        &env("spammer", "rx", "task", json!({})),
    );
    assert!(matches!(blocked, Verdict::Blocked { .. }), "{blocked:?}");
    let mut txn = GuardTxn::default();
    txn.unblock("spammer");
    g.apply(txn);
    assert_eq!(
        judge(
            &mut g,
            now,
            &policy,
            &env("spammer", "rx", "task", json!({}))
        ),
        Verdict::Admit
    );
}

#[test]
fn pruning_keeps_what_still_matters() {
    let mut g = Guard::default();
    let policy = Policy::default();
    judge(&mut g, 0, &policy, &env("a", "rx", "t", json!({"x": 1})));
    let window = policy.flood_window.as_millis() as u64;
    let (rate, burst) = policy.rate();
    g.prune(1, |_| (window, rate, burst));
    assert_eq!(g.state.bodies["rx"].len(), 1, "still inside the window");
    assert!(g.state.buckets.is_empty(), "refilled within a millisecond");
    g.prune(window, |_| (window, rate, burst));
    assert!(g.state.bodies.is_empty());
}
