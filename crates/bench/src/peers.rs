//! Peers measured in the same run: Redis (lists, an echo worker taking one
//! request at a time or batches of up to 256) with the append-only file and
//! `appendfsync always` or `everysec`, NATS JetStream (file storage, `sync_interval: always`,
//! a batching pull worker), and s6-supervise restarting a SIGKILLed service.
//! Each is started here on a free loopback port / in a temp dir and stopped
//! (its dir removed) when dropped.

mod nats;
mod redis;
mod s6;
mod sandbox;

pub use nats::Nats;
pub use redis::{Redis, Worker};
pub use s6::s6_restart;
// The browser of D1 runs the same way: free port, temp dir, wait until up.
pub use sandbox::{free_port, temp_dir, wait_ready};

/// The most requests a batching worker takes at once (Redis `COUNT`, the
/// JetStream pull batch): the figure the issue sets for a fair peer.
const BATCH: usize = 256;
