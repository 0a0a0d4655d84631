//! The on-disk format of a society, and nothing else.
//!
//! Theory of operation: files are the only truth. Every other crate reads and
//! writes a society through this one, so the format rules live in one place:
//!
//! * [`layout`] names every path (`.society-agent/agent-<id>/inbox.jsonl`, ...).
//! * [`kinds`] names the message types and record events the runtime acts on
//!   (`case_event`, `approval_request`, `agent_exited`, ...).
//! * [`id`] holds the validated identifiers ([`AgentId`], [`MsgId`], [`CaseId`],
//!   [`Party`]) and the deterministic derivation of output ids.
//! * [`envelope`] is the v1 message envelope and its validation.
//! * [`jsonl`] is the append protocol (flock, torn-tail repair, one `write(2)`
//!   per batch, fsync by durability class) and byte-cursor reading that never
//!   returns a half-written line.
//! * [`confine`] keeps every open inside the society: no symbolic link is
//!   followed among its own files, and a workspace's links only while they
//!   stay inside it.
//! * [`atomic`] replaces JSON state files atomically (temp, fsync, rename, fsync dir).
//! * [`segments`] rotates fully consumed live JSONL files into numbered,
//!   zstd-compressed segments under `archive/`, and reads them back in order.
//! * [`lock`] is the `flock`-based "one process per folder" guarantee; liveness
//!   is "the lock is held", never "the pid exists".
//! * [`memory`] is an agent's `memory.jsonl`: remember once per key, recall
//!   by BM25 over text and tags with recency, through a derived index.
//! * [`reuse`] splits an agent folder into skills (kept) and state (reset
//!   on reuse), summarises its experience (`metadata.json`) and scores it
//!   against a new purpose.
//! * [`state`] holds the JSON state documents shared by processes
//!   (`config.json`, `checkpoint.json`, `status.json`).
//!
//! This crate is synchronous on purpose: it is called from signal-driven loops,
//! from the CLI and from tests, and none of them need an async runtime.

pub mod atomic;
pub mod case;
pub mod confine;
pub mod envelope;
pub mod error;
pub mod fault;
pub mod governance;
pub mod id;
pub mod jsonl;
pub mod kinds;
pub mod layout;
pub mod lock;
pub mod memory;
pub mod org;
pub mod reuse;
pub mod segments;
pub mod state;
pub mod time;

pub use envelope::Envelope;
pub use error::{FormatError, IoError};
pub use id::{AgentId, CaseId, MsgId, Party, SocietyName};
pub use layout::{AgentPaths, Layout};

/// The on-disk format version written to `.society-agent/format.json`.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest format this binary reads: a format-1 tree is upgraded in
/// place (its `format.json` rewritten) the first time it is opened for
/// writing. In format 2 an agent's current state is in
/// `checkpoint.live.json`, which a format-1 binary would not see.
pub const OLDEST_FORMAT: u32 = 1;

/// The envelope version carried in every message (`"v":1`).
pub const ENVELOPE_VERSION: u32 = 1;

/// Default largest record a writer accepts, in bytes (1 MiB).
pub const DEFAULT_MAX_RECORD: usize = 1024 * 1024;

/// The largest `max_record` a policy may set (64 MiB). No writer accepts a
/// longer record, so a reader that knows no better bound holds at most this
/// much of any line (see [`jsonl::read_lines`]): a line of any length
/// appended by hand costs a bounded read, never a load of the whole line.
pub const MAX_RECORD_LIMIT: usize = 64 << 20;
