//! `command_protocol`: a command-brain program's stdout, as the brain reads
//! it before acting on any line. What it passes on becomes envelopes and
//! case events, so every output must already be valid: a type that names a
//! message type, a body that is an object.

use society_brains::fuzzing::command_protocol;
use society_brains::Action;
use society_core::envelope::{check_needs, valid_type};

pub fn check(data: &[u8]) {
    let inbound = super::inbound("task", serde_json::json!({"text": "hi"}));
    let ops = match command_protocol(data, &inbound) {
        Ok(ops) => ops,
        Err((line, reason)) => {
            let lines = data.split(|b| *b == b'\n').count();
            assert!(
                (1..=lines).contains(&line),
                "refused line {line} of {lines}"
            );
            assert!(!reason.is_empty(), "a refusal without a reason");
            return;
        }
    };
    let asked = data
        .split(|b| *b == b'\n')
        .filter(|l| !l.trim_ascii().is_empty())
        .count();
    assert!(ops.len() <= asked, "{} ops from {asked} lines", ops.len());
    for action in ops.iter().flatten() {
        valid_output(action, false);
    }
    // Everything after a `done` line is ignored.
    let mut longer = data.to_vec();
    longer.extend_from_slice(b"\n{\"action\":\"done\"}\n");
    longer.extend_from_slice(data);
    assert_eq!(
        command_protocol(&longer, &inbound),
        Ok(ops),
        "lines after done were read"
    );
}

fn valid_output(action: &Action, in_decide: bool) {
    match action {
        Action::Send {
            kind, body, needs, ..
        } => {
            assert!(valid_type(kind), "send of type {kind:?}");
            assert!(body.is_object(), "send with body {body}");
            assert_eq!(check_needs(needs), Ok(()));
        }
        Action::Reply { kind, body } => {
            assert!(valid_type(kind), "reply of type {kind:?}");
            assert!(body.is_object(), "reply with body {body}");
        }
        Action::CaseEvent { event, fields } => {
            assert!(valid_type(event), "case event {event:?}");
            assert!(fields.is_object(), "case event fields {fields}");
        }
        Action::Decide { proposal, then } => {
            assert!(!in_decide, "a decide inside a decide");
            assert!(proposal.is_object(), "proposal {proposal}");
            for step in then {
                assert!(
                    matches!(
                        step,
                        Action::Send { .. }
                            | Action::Reply { .. }
                            | Action::CaseEvent { .. }
                            | Action::Log { .. }
                    ),
                    "a decide's then holds {step:?}"
                );
                valid_output(step, true);
            }
        }
        Action::Log { .. } | Action::RequestApproval { .. } | Action::Escalate { .. } => {}
    }
}
