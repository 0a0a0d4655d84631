//! `llm_stream`: a streamed answer body (server-sent events) through the SSE
//! parser and the OpenAI and Anthropic assemblers. The network splits a
//! body anywhere, so the body whole, byte by byte and in uneven chunks must
//! give the same events and the same answer. An answer assembled at the
//! terminal event is what the non-streaming parser then reads.

use serde_json::Value;
use society_brains::fuzzing::{anthropic_parse, openai_parse, stream, StreamEnd, Wire};

pub fn check(data: &[u8]) {
    for wire in [Wire::Openai, Wire::Anthropic] {
        let whole = stream(wire, &[data]);
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        assert_eq!(stream(wire, &bytes), whole, "{wire:?}: split byte by byte");
        assert_eq!(
            stream(wire, &uneven(data)),
            whole,
            "{wire:?}: split unevenly"
        );
        let StreamEnd::Done(answer) = &whole.end else {
            continue;
        };
        // The brain passes the answer on as the body text of a response.
        let text = answer.to_string();
        let back: Value = serde_json::from_str(&text).expect("an assembled answer is JSON");
        assert_eq!(
            &back, answer,
            "{wire:?}: the answer changed through its text"
        );
        match wire {
            Wire::Openai => {
                openai_parse(answer, 1).expect("an assembled OpenAI answer parses");
            }
            Wire::Anthropic => {
                let _ = anthropic_parse(answer);
            }
        }
    }
}

/// Chunks of 1, 2, 3, 5, 8, ... bytes, starting over past 89.
fn uneven(data: &[u8]) -> Vec<&[u8]> {
    let (mut a, mut b) = (1, 2);
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let (head, tail) = rest.split_at(a.min(rest.len()));
        out.push(head);
        rest = tail;
        (a, b) = if b > 89 { (1, 2) } else { (b, a + b) };
    }
    out
}
