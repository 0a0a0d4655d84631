//! The client library: what a command *does* — send, broadcast (and read
//! acknowledgements back), publish shared context, spawn,
//! stop, restart, wait, control the supervisor, reload `society.toml`,
//! collect status, read cases and costs — with typed inputs and outputs and one error type whose
//! variants carry their exit code. The CLI (`src/cli/`) parses arguments and
//! renders results around these functions; the dashboard, federation and
//! tests call the same functions, so they act exactly as the CLI does.
//!
//! Nothing here prints: warnings are returned (e.g. [`send::Delivered`]).

pub mod agents;
pub mod answers;
pub mod broadcast;
pub mod case_control;
pub mod cases;
pub mod config;
pub mod costs;
pub mod deadletter;
pub mod decisions;
pub mod describe;
mod error;
pub mod memory;
pub mod metrics;
pub mod remove;
pub mod retire;
pub mod reuse;
pub mod review;
pub mod send;
pub mod shared;
pub mod skills;
pub mod status;
pub mod supervisor;
pub mod top;
pub mod tree;

pub use error::ClientError;
