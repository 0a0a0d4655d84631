//! The helpers the modules of this binary share, one copy each (STYLE.md
//! "Tests"). What the other packages' tests need as well lives in
//! `society_testkit`; what only one module needs stays in that module.

mod cli;
mod disk;
mod logs;
mod processes;
mod societies;
mod waits;

use std::time::Duration;

pub use cli::{code, json_of, paste, readme_block};
pub use disk::SmallDisk;
pub use logs::{agent_state, read_json, replies_to, system_events, wait_reply};
pub use processes::{lock_free, wait_exit, Reaped};
pub use societies::ECHO_TOML;
pub use waits::wait_quiet;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_society");

/// Generous deadline for anything that should take well under a second.
pub const SOON: Duration = Duration::from_secs(20);
