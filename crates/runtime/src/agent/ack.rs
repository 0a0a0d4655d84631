//! Acknowledging broadcasts (`society broadcast`, SOCIETY.md O8).
//!
//! A broadcast's copy carries `body.broadcast = {id, ack}`. With `ack:
//! auto` the runtime adds an `ack` message to the supervisor to the outputs
//! of handling the copy, whatever the brain did (even nothing), so it is
//! committed with them: one append, id `derive(copy, ACK_INDEX)`, and a
//! replay of the copy derives the same id, which the outbox already holds.
//! With `ack: explicit` only the brain can acknowledge, by replying with
//! type `ack` (or sending one to the orchestrator or the supervisor, as an
//! `llm` brain's `send_message` can): that message is readdressed to the
//! supervisor (same derived id) with the broadcast named, its body kept as
//! `note`. A copy that fails and
//! is dead-lettered is never acknowledged: the deadline escalates it.

use serde_json::{json, Value};
use society_core::kinds::broadcast as bc;
use society_core::{Envelope, MsgId, Party};

/// The output index of an automatic acknowledgement (far from brains'
/// indexes and from the runtime's reports).
const ACK_INDEX: u32 = u32::MAX - 2;

/// The broadcast a message is a copy of, and whether its ack is explicit.
fn broadcast_of(input: &Envelope) -> Option<(&Value, bool)> {
    if input.from != Party::Orchestrator {
        return None;
    }
    let field = input.body.get(bc::BODY_FIELD)?;
    let id = field.get("id").filter(|v| v.is_string())?;
    let explicit = field.get("ack").and_then(Value::as_str) == Some(bc::EXPLICIT);
    Some((id, explicit))
}

/// The body of an acknowledgement.
fn ack_body(broadcast: &Value, input: &Envelope, how: &str, note: Option<Value>) -> Value {
    let mut body = json!({"broadcast": broadcast, "message": input.id, "how": how});
    if let Some(note) = note {
        body["note"] = note;
    }
    body
}

/// A brain's output `env` for `input`: when it is the `ack` an explicit
/// broadcast asks for, it goes to the supervisor instead.
pub(super) fn readdress(input: &Envelope, env: &mut Envelope) {
    let Some((id, true)) = broadcast_of(input) else {
        return;
    };
    // A reply, or a message of type `ack` to the orchestrator or the
    // supervisor (an `llm` brain's `send_message`); not one to an agent.
    if env.kind != bc::ACK_TYPE || !matches!(env.to, Party::Orchestrator | Party::Supervisor) {
        return;
    }
    env.reply_to = Some(input.id);
    let note = std::mem::take(&mut env.body);
    env.body = ack_body(id, input, bc::EXPLICIT, Some(note));
    env.to = Party::Supervisor;
}

/// The automatic acknowledgement of `input`, if it is a copy of an
/// `ack: auto` broadcast. `template` carries the sender, generation, case
/// and hops of the outputs.
pub(super) fn auto(input: &Envelope, template: &Envelope) -> Option<Envelope> {
    let (id, false) = broadcast_of(input)? else {
        return None;
    };
    let mut ack = template.clone();
    ack.id = MsgId::derive(&input.id, ACK_INDEX);
    ack.to = Party::Supervisor;
    ack.kind = bc::ACK_TYPE.into();
    ack.reply_to = Some(input.id);
    ack.body = ack_body(id, input, bc::AUTO, None);
    Some(ack)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(from: Party, ack: &str) -> Envelope {
        Envelope::new(
            from,
            "w1".parse().expect("party"),
            "broadcast",
            json!({"text": "hi", "broadcast": {"id": "01J00000000000000000000000", "ack": ack}}),
        )
    }

    fn out(to: &str, kind: &str) -> Envelope {
        Envelope::new(
            "w1".parse().expect("party"),
            to.parse().expect("party"),
            kind,
            json!({"text": "ok"}),
        )
    }

    #[test]
    fn only_the_orchestrators_copies_are_acknowledged_each_as_its_mode_says() {
        let template = out("supervisor", "reply");
        let auto = copy(Party::Orchestrator, "auto");
        let ack = super::auto(&auto, &template).expect("an auto ack");
        assert_eq!(ack.to, Party::Supervisor);
        assert_eq!(ack.kind, "ack");
        assert_eq!(
            ack.id,
            MsgId::derive(&auto.id, ACK_INDEX),
            "replays derive it again"
        );
        assert_eq!(ack.body["broadcast"], "01J00000000000000000000000");
        assert_eq!(ack.body["how"], "auto");
        let explicit = copy(Party::Orchestrator, "explicit");
        assert!(super::auto(&explicit, &template).is_none());
        let forged = copy("w2".parse().expect("party"), "auto");
        assert!(
            super::auto(&forged, &template).is_none(),
            "agents cannot ask for acks"
        );
        let plain = Envelope::new(
            Party::Orchestrator,
            "w1".parse().expect("p"),
            "t",
            json!({}),
        );
        assert!(super::auto(&plain, &template).is_none());
        // Explicit: the brain's `ack` to the orchestrator or supervisor goes
        // to the supervisor; anything else is left alone.
        for (to, kind, readdressed) in [
            ("orchestrator", "ack", true),
            ("supervisor", "ack", true),
            ("w2", "ack", false),
            ("orchestrator", "reply", false),
        ] {
            let mut env = out(to, kind);
            readdress(&explicit, &mut env);
            assert_eq!(
                env.to == Party::Supervisor && env.body.get("note").is_some(),
                readdressed,
                "{to} {kind}"
            );
        }
        let mut env = out("orchestrator", "ack");
        readdress(&auto, &mut env);
        assert_eq!(
            env.to,
            Party::Orchestrator,
            "an auto broadcast's `ack` reply is a reply"
        );
    }
}
