//! The moving parts of a society: the agent process loop and the supervisor.
//!
//! Theory of operation:
//!
//! * [`agent::run_agent`] is the whole life of one agent process
//!   (`society agent-run`). It takes `process.lock`, bumps its generation, and
//!   consumes its inbox by byte cursor under the delivery contract: record the
//!   message in flight, run the brain, append outputs with deterministic ids,
//!   then advance the cursor. It sleeps on a signal-fed channel: the supervisor
//!   wakes it with `SIGUSR1`, so agents need no inotify instance of their own.
//! * [`supervisor::run_supervisor`] is the daemon. One thread owns all mutable
//!   state and `recv`s events from three producers: the one `notify` watcher
//!   (inboxes, outboxes, registry, its own inbox), the signal thread (`SIGCHLD`,
//!   `SIGTERM`) and a tick. It spawns agents by re-executing its own binary in
//!   their own process group, reaps them, restarts them with backoff, kills
//!   hung ones, adopts live ones after its own restart, and routes outboxes.
//! * [`approvals`] reads the pending approval requests back from the logs
//!   (requests in the orchestrator's inbox, answers in the supervisor's).
//! * [`broadcast`] is the record format and fold of `messages/broadcast.jsonl`
//!   (broadcasts, acknowledgements, escalations), read by the CLI and the
//!   supervisor alike.
//! * [`provision`] creates agent folders from `society.toml` or `society spawn`;
//!   [`config`] reads `society.toml`.
//!
//! No async runtime: every wait here is on a process, a signal or a file, and
//! a single-threaded event loop over a channel is the simplest correct owner.

pub mod activity;
pub mod agent;
pub mod approvals;
pub mod broadcast;
pub mod client;
pub mod config;
pub mod control;
pub mod exit;
pub mod federation;
pub mod fsck;
pub mod governance;
pub mod metadata;
pub mod org;
pub mod provision;
pub mod registry;
pub mod restart;
pub mod roles;
pub mod selftest;
pub mod supervisor;
pub mod watch;
