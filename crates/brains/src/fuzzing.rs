//! Entry points for the fuzz targets (`fuzz/`) and their regression tests
//! (`society_testkit::fuzz`): thin wrappers over parsers that are private to
//! this crate. Not an API: hidden from the docs, outside semver, and never
//! called by the runtime.

use crate::llm::stream::{self, sse, Broken, Step};
use crate::Action;
use serde_json::Value;
use society_core::Envelope;

pub use crate::llm::conversation::ModelReply;

/// The command brain's stdout protocol: one entry per line that asked for
/// something (`None` for the ones the brain performs itself: `write_file`,
/// `remember`), or the 1-based line that was refused and why.
pub fn command_protocol(
    stdout: &[u8],
    inbound: &Envelope,
) -> Result<Vec<Option<Action>>, (usize, String)> {
    use crate::command::protocol::{parse, Op};
    let ops = parse(stdout, inbound).map_err(|e| (e.line, e.reason))?;
    Ok(ops
        .into_iter()
        .map(|op| match op {
            Op::Act(action) => Some(action),
            Op::Write { .. } | Op::Remember(_) => None,
        })
        .collect())
}

/// A script rule's template (`render`) rendered for `msg`, as agent `fuzz`
/// of role `fuzz` on its first attempt, after a recall that found `recall`.
pub fn script_render(template: &Value, msg: &Envelope, recall: Option<Value>) -> Value {
    vars(msg, recall).render(template)
}

/// [`script_render`] for text (`render_str`).
pub fn script_render_str(template: &str, msg: &Envelope, recall: Option<Value>) -> String {
    vars(msg, recall).render_str(template)
}

fn vars(msg: &Envelope, recall: Option<Value>) -> crate::script::template::Vars<'_> {
    crate::script::template::Vars {
        msg,
        ctx_agent: "fuzz",
        role: "fuzz",
        attempt: 1,
        recall,
    }
}

/// An OpenAI chat completion, read as the brain reads it.
pub fn openai_parse(v: &Value, step: u32) -> Result<ModelReply, String> {
    crate::llm::openai::parse(v, step)
}

/// An Anthropic message, read as the brain reads it.
pub fn anthropic_parse(v: &Value) -> Result<ModelReply, String> {
    crate::llm::anthropic::parse(v)
}

/// Which streamed wire format.
#[derive(Debug, Clone, Copy)]
pub enum Wire {
    Openai,
    Anthropic,
}

/// How a streamed answer ended.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEnd {
    /// The terminal event came: the answer, assembled.
    Done(Value),
    /// The bytes ended first: what was assembled so far (the brain retries).
    Cut(Value),
    /// An `error` event (the brain retries).
    Retry(String),
    /// Not the protocol (the brain gives up).
    Malformed(String),
}

/// What the streaming parsers made of a body that arrived in `chunks`.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamRun {
    /// Every event the SSE parser completed, `(name, data)`, up to the last
    /// one the assembler took.
    pub events: Vec<(String, String)>,
    /// The SSE parser held bytes of an unfinished event when the body ended.
    pub pending: bool,
    pub end: StreamEnd,
}

/// Feeds `chunks` through the SSE parser into the assembler of `wire`, the
/// way `stream::exchange` does with the chunks of a response body.
pub fn stream(wire: Wire, chunks: &[&[u8]]) -> StreamRun {
    let mut parser = sse::Parser::default();
    let mut openai = stream::openai::Answer::default();
    let mut anthropic = stream::anthropic::Answer::default();
    let mut events = Vec::new();
    for chunk in chunks {
        for ev in parser.feed(chunk) {
            events.push((ev.name.clone(), ev.data.clone()));
            let step = match wire {
                Wire::Openai => openai.event(&ev),
                Wire::Anthropic => anthropic.event(&ev),
            };
            let end = match step {
                Ok(Step::More) => continue,
                Ok(Step::Done) => StreamEnd::Done(assembled(wire, openai, anthropic)),
                Err(Broken::Retry(why)) => StreamEnd::Retry(why),
                Err(Broken::Malformed(why)) => StreamEnd::Malformed(why),
            };
            return StreamRun {
                events,
                pending: false,
                end,
            };
        }
    }
    StreamRun {
        events,
        pending: parser.pending(),
        end: StreamEnd::Cut(assembled(wire, openai, anthropic)),
    }
}

fn assembled(
    wire: Wire,
    openai: stream::openai::Answer,
    anthropic: stream::anthropic::Answer,
) -> Value {
    match wire {
        Wire::Openai => openai.answer(),
        Wire::Anthropic => anthropic.answer(),
    }
}
