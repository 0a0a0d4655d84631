//! `llm_response`: a provider's whole (non-streamed) answer, read by both
//! the OpenAI and the Anthropic parser, whichever shape it has.

use serde_json::Value;
use society_brains::fuzzing::{anthropic_parse, openai_parse, ModelReply};

pub fn check(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Ok(reply) = openai_parse(&v, 3) {
        sane(&reply);
        assert_eq!(
            reply.truncated,
            reply.stop_reason.as_deref() == Some("length")
        );
        for (i, call) in reply.calls.iter().enumerate() {
            // A call without an id gets one, stable for the step.
            assert!(!call.id.is_empty(), "call {i} has no id");
        }
    }
    if let Ok(reply) = anthropic_parse(&v) {
        sane(&reply);
        assert_eq!(
            reply.truncated,
            reply.stop_reason.as_deref() == Some("max_tokens")
        );
    }
}

fn sane(reply: &ModelReply) {
    assert_ne!(reply.text.as_deref(), Some(""), "an empty text is no text");
    // The calls are recorded in the conversation log and read back.
    for call in &reply.calls {
        let line = serde_json::to_string(&call.args).expect("arguments serialise");
        let back: Value = serde_json::from_str(&line).expect("arguments read back");
        assert_eq!(back, call.args, "arguments changed through the log");
    }
}
