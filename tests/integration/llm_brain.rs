//! The `llm` brain against a scripted model server on 127.0.0.1, through the
//! real binary: a real supervisor, real agent processes, real SIGKILLs.
//! No network beyond loopback, no real key: `TEST_LLM_KEY` holds a fake one,
//! and every test ends by grepping every file of the society for it.

mod attempts;
mod budget;
mod circuit;
mod compaction;
mod conversation;
mod decide;
mod estimated;
mod fallback;
mod mcp;
mod memory;
mod own_tools;
mod plumbing;
mod resilience;
mod streaming;
pub(crate) mod support;
mod wire;
