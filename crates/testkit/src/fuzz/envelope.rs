//! `envelope`: one line of an inbox or outbox, as the router and the agents
//! read it (`Envelope::parse`, which validates).

use society_core::{Envelope, Party};

pub fn check(data: &[u8]) {
    let env = match Envelope::parse(data) {
        Ok(env) => env,
        Err(e) => {
            // The reason goes into dead-letter records: it must render.
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    env.validate()
        .unwrap_or_else(|e| panic!("a parsed envelope fails validate: {e}"));
    let line = env.to_line();
    assert!(
        !line.contains(&b'\n'),
        "to_line wrote a newline into a JSONL record"
    );
    let again = Envelope::parse(&line).unwrap_or_else(|e| {
        panic!(
            "the envelope re-serialised as {} does not parse back: {e}",
            String::from_utf8_lossy(&line)
        )
    });
    assert_eq!(again, env, "an envelope changed through to_line and parse");
    assert_eq!(again.to_line(), line, "to_line is not a fixed point");
    for party in [&env.from, &env.to] {
        assert_eq!(
            party.to_string().parse::<Party>().ok().as_ref(),
            Some(party),
            "a party does not print back to itself"
        );
        if let Some(society) = party.society() {
            let local = party.local();
            assert!(
                local.society().is_none(),
                "a remote party nests another: {party}"
            );
            assert_eq!(
                &local.clone().at(society),
                party,
                "a remote party's parts do not rebuild it"
            );
        }
    }
}
