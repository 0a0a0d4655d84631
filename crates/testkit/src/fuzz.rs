//! What the fuzz targets check, one function per target taking the fuzzer's
//! bytes and panicking when an invariant breaks.
//!
//! Why here and not in `fuzz/`: the same functions run twice. The libFuzzer
//! binaries in `fuzz/fuzz_targets/` (nightly, `scripts/fuzz.sh`) are one
//! line each around them, and `tests/fuzz_regressions.rs` feeds them every
//! committed seed (`fuzz/seeds/<target>/`) and every input that once broke
//! one (`fuzz/regressions/<target>/`) under a plain stable `cargo test`. So
//! a fixed crash stays fixed without a nightly toolchain, and the checks
//! cannot drift apart between the two.
//!
//! Each target checks more than "no panic" where a parser promises more:
//! a parsed envelope prints back to itself, the JSONL reader returns every
//! complete line once and never a torn one, a loaded `society.toml` yields
//! agent configs that read back as written, the command protocol only
//! passes valid outputs, the SSE parser gives the same events however the
//! body is split.

mod command_protocol;
mod envelope;
mod jsonl_reader;
mod llm_response;
mod llm_stream;
mod script_rules;
mod society_toml;

use society_core::{Envelope, MsgId, Party};

/// A target's check: panics when the input breaks an invariant.
pub type Check = fn(&[u8]);

/// Every target, by the name of its binary in `fuzz/fuzz_targets/`.
pub const TARGETS: &[(&str, Check)] = &[
    ("envelope", envelope::check),
    ("jsonl_reader", jsonl_reader::check),
    ("society_toml", society_toml::check),
    ("command_protocol", command_protocol::check),
    ("script_rules", script_rules::check),
    ("llm_response", llm_response::check),
    ("llm_stream", llm_stream::check),
];

pub use command_protocol::check as command_protocol;
pub use envelope::check as envelope;
pub use jsonl_reader::check as jsonl_reader;
pub use llm_response::check as llm_response;
pub use llm_stream::check as llm_stream;
pub use script_rules::check as script_rules;
pub use society_toml::check as society_toml;

/// A valid inbound message with a fixed id and time, so that a run is a
/// function of the input alone (libFuzzer needs that to minimise).
fn inbound(kind: &str, body: serde_json::Value) -> Envelope {
    Envelope {
        v: society_core::ENVELOPE_VERSION,
        id: "01JAAAAAAAAAAAAAAAAAAAAAAA"
            .parse::<MsgId>()
            .expect("a constant ULID"),
        ts: "2026-01-01T00:00:00.000Z".into(),
        from: Party::Orchestrator,
        to: "fuzz".parse().expect("a constant agent id"),
        kind: kind.into(),
        case: None,
        reply_to: None,
        gen: 0,
        hops: 0,
        needs: Vec::new(),
        body,
    }
}
