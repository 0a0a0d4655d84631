//! The federation bridge: this society's link to the others over NATS
//! JetStream (SCALING.md; FORMAT.md, "Federation").
//!
//! It runs in the supervisor, on a thread of its own with a current-thread
//! tokio runtime for `async-nats`; the rest of the runtime stays
//! synchronous and talks to it through files only:
//!
//! - **Out:** the router appends every message to another society to
//!   `supervisor/outbound.jsonl` (durable, in the same batch as the rest of
//!   what the line decided). The bridge publishes its lines in order, one
//!   at a time, to `society.<to>.in`, each with its envelope id as
//!   `Nats-Msg-Id` (the stream drops a second copy within its duplicate
//!   window), and moves its cursor (`supervisor/federation.json`) past a
//!   line only once the server acknowledged it: a crash or a lost link
//!   publishes again, never skips.
//! - **In:** a durable pull consumer on this society's own stream, made
//!   afresh at start and on each new connection; what has arrived is
//!   appended to `supervisor/inbox.jsonl` (one write, one fsync) and only
//!   then acknowledged; the router routes it from there like any outbox
//!   line. A message the server delivers again (the ack was lost, the
//!   supervisor died between the append and the ack) is recognised by its
//!   envelope id and acknowledged without a second append.

use crate::config::FederationConfig;
use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use society_core::jsonl::{read_lines_bounded, Appender, Durability};
use society_core::segments::{self, Segment};
use society_core::{atomic, Envelope, Layout, MsgId, Party, SocietyName};
use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// The subject a society's messages are published to.
pub fn subject(society: &SocietyName) -> String {
    format!("society.{society}.in")
}

/// The JetStream stream holding a society's incoming messages.
pub fn stream_name(society: &SocietyName) -> String {
    format!("SOCIETY_{society}")
}

/// The durable consumer a society reads its stream with.
pub fn consumer_name(society: &SocietyName) -> String {
    format!("society-{society}")
}

/// Lines of `outbound.jsonl` read at once (published one at a time).
const BATCH: usize = 256;
/// Messages pulled ahead of their acknowledgements, and appended at once.
const FETCH: usize = 256;
/// Envelope ids of received messages remembered to recognise a redelivery.
const SEEN: usize = 200_000;
/// How long the server waits for an acknowledgement before delivering again.
const ACK_WAIT: Duration = Duration::from_secs(30);
/// JetStream requests (a publish's acknowledgement among them) time out.
const TIMEOUT: Duration = Duration::from_secs(5);

/// `supervisor/federation.json`: the outbound cursor and the link as the
/// bridge last saw it (`society federation status`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LinkState {
    /// This society's name.
    pub society: String,
    /// The servers, as configured (never with credentials).
    pub servers: Vec<String>,
    /// The supervisor running the bridge.
    pub pid: u32,
    pub connected: bool,
    /// When `connected` last changed (RFC 3339).
    pub since: Option<String>,
    /// Bytes of `outbound.jsonl` the NATS server acknowledged.
    pub cursor: u64,
    /// The live `outbound.jsonl` the cursor is in: how many times it had
    /// been rotated into `archive/supervisor/` (retention). A file rotated
    /// more often than this was rotated at the cursor, saved durably first:
    /// everything in it was acknowledged, and the cursor is 0.
    #[serde(default)]
    pub seg: u64,
    /// Messages published (acknowledged) and received by this process.
    pub published: u64,
    pub received: u64,
    /// Messages received again and recognised by their id (not appended).
    pub duplicates: u64,
    /// Lines that could not be sent or received (see `last_error`).
    pub refused: u64,
    pub last_error: Option<String>,
    /// When this file was written (RFC 3339).
    pub updated: String,
}

impl LinkState {
    pub fn load(layout: &Layout) -> Result<Option<LinkState>, society_core::FormatError> {
        atomic::read_json(&layout.federation_state(), "federation state")
    }

    /// The cursor into the live `outbound.jsonl`: 0 if the file was rotated
    /// since this state was written (a crash between the rotation and the
    /// write recording it).
    pub fn live_cursor(&self, layout: &Layout) -> u64 {
        match segments::live_seq(layout, &layout.federation_outbound()) {
            Ok(live) if live > self.seg => 0,
            _ => self.cursor,
        }
    }
}

/// The running bridge, as the supervisor holds it.
pub struct Bridge {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Shared {
    /// Something was appended to `outbound.jsonl`.
    outbound: Notify,
    /// Set once, when the bridge stops; every wait also waits on it.
    stop: tokio::sync::watch::Sender<bool>,
    /// Connections made so far (the receiver opens its consumer afresh on
    /// each new one).
    connections: AtomicU64,
    state: Mutex<LinkState>,
    path: PathBuf,
}

impl Shared {
    /// Changes the state and writes it, under the lock: two threads write
    /// the file (this bridge's, and the supervisor's when it rotates
    /// `outbound.jsonl`), through one temporary file, and the newest state
    /// must be the one that stays.
    fn update(&self, f: impl FnOnce(&mut LinkState)) {
        let mut s = self.lock();
        f(&mut s);
        s.updated = society_core::time::now_rfc3339();
        // Not durable: a cursor lost in a crash publishes again, and the
        // stream (and the receiver) drop the second copy by its id.
        if let Err(e) = atomic::write_json(&self.path, &*s, false) {
            tracing::warn!(error = %e, "federation state not written");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LinkState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cursor and the live file it is in, read together.
    fn position(&self) -> (u64, u64) {
        let s = self.lock();
        (s.cursor, s.seg)
    }

    fn error(&self, what: &str, e: impl std::fmt::Display) {
        let text = format!("{what}: {e}");
        tracing::warn!(error = %text, "federation");
        self.update(|s| s.last_error = Some(text));
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }
}

impl Bridge {
    /// Starts the bridge's thread. It connects (and reconnects) by itself;
    /// an unreachable server leaves messages waiting in `outbound.jsonl`.
    pub fn start(
        layout: &Layout,
        name: SocietyName,
        cfg: FederationConfig,
    ) -> std::io::Result<Bridge> {
        let previous = LinkState::load(layout).ok().flatten().unwrap_or_default();
        let seg = segments::live_seq(layout, &layout.federation_outbound())
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let servers: Vec<String> = cfg
            .nats_url
            .split(',')
            .map(|u| u.trim().to_string())
            .collect();
        let state = LinkState {
            society: name.to_string(),
            servers: servers.clone(),
            pid: std::process::id(),
            connected: false,
            since: Some(society_core::time::now_rfc3339()),
            cursor: previous.live_cursor(layout),
            seg,
            ..LinkState::default()
        };
        let shared = Arc::new(Shared {
            outbound: Notify::new(),
            stop: tokio::sync::watch::channel(false).0,
            connections: AtomicU64::new(0),
            state: Mutex::new(state),
            path: layout.federation_state(),
        });
        shared.update(|_| {});
        // rustls has no provider of its own once two are compiled in; an
        // error says one is installed already (the same or another), which
        // is all TLS needs.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let layout = layout.clone();
        let inner = shared.clone();
        let thread = std::thread::Builder::new()
            .name("federation".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => return inner.error("cannot start the bridge's runtime", e),
                };
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    rt.block_on(run(layout, name, cfg, servers, inner.clone()))
                }));
                if let Err(panic) = ran {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    inner.update(|s| s.connected = false);
                    inner.error(
                        "the federation bridge stopped (restart the supervisor)",
                        what,
                    );
                }
            })?;
        Ok(Bridge {
            shared,
            thread: Some(thread),
        })
    }

    /// Lines were appended to `outbound.jsonl`.
    pub fn poke(&self) {
        self.shared.outbound.notify_one();
    }

    /// Rotates `outbound.jsonl` into `archive/supervisor/` if it is at least
    /// `min` bytes and the server acknowledged all of it. Called by the
    /// supervisor's retention on the thread that appends to the file, with
    /// no batch waiting that writes to it, so nothing is appended meanwhile;
    /// the cursor is saved durably first, and the bridge, which reads the
    /// cursor and the live file's number together, starts the new file at 0.
    pub fn rotate_outbound(
        &self,
        layout: &Layout,
        min: u64,
    ) -> Result<Option<(Segment, u64)>, society_core::FormatError> {
        let path = layout.federation_outbound();
        let mut s = self.shared.lock();
        let len = std::fs::metadata(&path).map_or(0, |m| m.len());
        if len < min.max(1) || s.cursor != len {
            return Ok(None);
        }
        s.updated = society_core::time::now_rfc3339();
        atomic::write_json(&self.shared.path, &*s, true)?;
        let Some(seg) = segments::rotate(layout, &path, len)? else {
            return Ok(None);
        };
        society_core::fault::point("federation.outbound.rotated");
        s.cursor = 0;
        s.seg = seg.seq + 1;
        s.updated = society_core::time::now_rfc3339();
        if let Err(e) = atomic::write_json(&self.shared.path, &*s, false) {
            // The next start finds the file rotated past `seg`: cursor 0.
            tracing::warn!(error = %e, "federation state not written");
        }
        Ok(Some((seg, len)))
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.shared.stop.send_replace(true);
        self.shared.outbound.notify_one();
        // A request in flight ends within its timeout; the supervisor does
        // not wait longer than that for it (what was not acknowledged is
        // sent or received again by the next one).
        if let Some(t) = self.thread.take() {
            let deadline = std::time::Instant::now() + TIMEOUT + Duration::from_secs(1);
            while !t.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
        self.shared.update(|s| s.connected = false);
    }
}

/// Resolves once the bridge is stopping.
async fn stopping(shared: &Shared) {
    let mut rx = shared.stop.subscribe();
    let _ = rx.wait_for(|stop| *stop).await;
}

async fn run(
    layout: Layout,
    name: SocietyName,
    cfg: FederationConfig,
    servers: Vec<String>,
    shared: Arc<Shared>,
) {
    let options = match options(&cfg, &name, shared.clone()).await {
        Ok(o) => o,
        Err(e) => return shared.error("cannot configure the NATS connection", e),
    };
    let client = tokio::select! {
        c = options.connect(servers) => c,
        _ = stopping(&shared) => return,
    };
    let client = match client {
        Ok(c) => c,
        Err(e) => return shared.error("cannot connect to NATS", e),
    };
    let js = jetstream::ContextBuilder::new()
        .timeout(TIMEOUT)
        // An acknowledgement abandoned after a failure holds its in-flight
        // permit this long (30 s by default: publishing stalled that long
        // after every server restart).
        .ack_timeout(TIMEOUT)
        .max_ack_inflight(1)
        .build(client.clone());
    let out = publish(&layout, &js, &cfg, &shared);
    let inb = receive(&layout, &js, &name, &cfg, &shared);
    tokio::join!(out, inb);
    let _ = tokio::time::timeout(Duration::from_secs(1), client.drain()).await;
}

/// The connection's options: credentials from the environment or a creds
/// file (never from `society.toml`), TLS when a URL says `tls://`.
async fn options(
    cfg: &FederationConfig,
    name: &SocietyName,
    shared: Arc<Shared>,
) -> std::io::Result<async_nats::ConnectOptions> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut o = async_nats::ConnectOptions::new()
        .name(format!("society-{name}"))
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(TIMEOUT)
        .ping_interval(Duration::from_secs(5))
        .event_callback(move |event| {
            let shared = shared.clone();
            async move {
                use async_nats::Event;
                let connected = match event {
                    Event::Connected => {
                        shared.connections.fetch_add(1, Ordering::SeqCst);
                        true
                    }
                    Event::Disconnected => false,
                    // An authorization violation, a TLS failure: said where
                    // `society federation status` shows it.
                    Event::ServerError(e) => return shared.error("the NATS server says", e),
                    Event::ClientError(e) => return shared.error("the NATS connection", e),
                    other => {
                        tracing::debug!(event = %other, "nats");
                        return;
                    }
                };
                tracing::info!(connected, "federation link");
                shared.update(|s| {
                    s.connected = connected;
                    s.since = Some(society_core::time::now_rfc3339());
                });
            }
        });
    if let Some(path) = var("SOCIETY_NATS_CREDS")
        .map(PathBuf::from)
        .or(cfg.creds_file.clone())
    {
        o = o.credentials_file(&path).await.map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("credentials file {}: {e}", path.display()),
            )
        })?;
    }
    if let Some(token) = var("SOCIETY_NATS_TOKEN") {
        o = o.token(token);
    }
    if let (Some(user), Some(pass)) = (var("SOCIETY_NATS_USER"), var("SOCIETY_NATS_PASSWORD")) {
        o = o.user_and_password(user, pass);
    }
    if let Some(ca) = var("SOCIETY_NATS_CA") {
        o = o.add_root_certificates(PathBuf::from(ca));
    }
    if cfg
        .nats_url
        .split(',')
        .any(|u| u.trim().starts_with("tls://"))
    {
        o = o.require_tls(true);
    }
    Ok(o)
}

fn stream_config(society: &SocietyName, replicas: usize) -> stream::Config {
    stream::Config {
        name: stream_name(society),
        subjects: vec![subject(society)],
        // A message stays until the society it is for has taken it.
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        num_replicas: replicas,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    }
}

/// Waits `d`, or less if the bridge stops.
async fn pause(shared: &Shared, d: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = stopping(shared) => {}
    }
}

/// Publishes `outbound.jsonl` from the cursor, in order.
async fn publish(
    layout: &Layout,
    js: &jetstream::Context,
    cfg: &FederationConfig,
    shared: &Shared,
) {
    let path = layout.federation_outbound();
    let mut streams: HashSet<SocietyName> = HashSet::new();
    let mut backoff = Duration::from_millis(100);
    loop {
        if shared.stopping() {
            return;
        }
        let (cursor, seg) = shared.position();
        let len = std::fs::metadata(&path).map_or(0, |m| m.len());
        // Rotated (retention) since the cursor was read: what was read
        // belongs to another file; read the cursor again.
        let rotated = || shared.position().1 != seg;
        if len < cursor {
            if rotated() {
                continue;
            }
            // Cut below what was published (a restore, a hand): what is
            // there now may be old lines or new ones the router appended
            // since — the bridge cannot tell, so it publishes the file again
            // from its start, and the stream (by `Nats-Msg-Id`) and the
            // receivers (by envelope id) drop what they already have.
            shared.error(
                "outbound.jsonl is shorter than the bridge's cursor",
                format!("cut to {len} bytes below {cursor}; publishing it again from its start"),
            );
            shared.update(|s| s.cursor = 0);
            continue;
        }
        let batch = match read_lines_bounded(&path, cursor, 1 << 20, society_core::MAX_RECORD_LIMIT)
        {
            Ok(b) => b,
            Err(_) if rotated() => continue,
            Err(e) => {
                shared.error("cannot read outbound.jsonl", e);
                pause(shared, Duration::from_secs(1)).await;
                continue;
            }
        };
        if rotated() {
            continue;
        }
        if batch.lines.is_empty() {
            tokio::select! {
                _ = shared.outbound.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            continue;
        }
        // One message at a time, each acknowledged before the next is sent:
        // with several in flight, a connection lost mid-way reorders them
        // (the client sends what it still held on the new connection before
        // the retry of the first unacknowledged one: the 10,000-message test
        // saw a task 46 places late). The server's fsync of each message
        // bounds the rate either way (SCALING.md).
        let (mut next, mut sent, mut dups) = (cursor, 0u64, 0u64);
        let mut failed = None;
        for line in batch.lines.iter().take(BATCH) {
            let env = match Envelope::parse(&line.bytes) {
                Ok(env) if env.to.society().is_some() => env,
                Ok(env) => {
                    refuse(
                        shared,
                        format!(
                            "a line of outbound.jsonl at {} is not for another society (to {})",
                            line.offset, env.to
                        ),
                    );
                    next = line.end;
                    continue;
                }
                Err(e) => {
                    refuse(
                        shared,
                        format!("a line of outbound.jsonl at {}: {e}", line.offset),
                    );
                    next = line.end;
                    continue;
                }
            };
            let to = env.to.society().expect("checked above").clone();
            if !streams.contains(&to) {
                // The destination's stream, so that messages wait for a
                // society that has not started yet.
                match js
                    .get_or_create_stream(stream_config(&to, cfg.replicas))
                    .await
                {
                    Ok(_) => {
                        streams.insert(to.clone());
                    }
                    Err(e) => {
                        failed = Some(format!("cannot reach the stream of society {to}: {e}"));
                        break;
                    }
                }
            }
            let message = jetstream::message::PublishMessage::build()
                .payload(line.bytes.clone().into())
                .message_id(env.id.to_string());
            let acked = match js.send_publish(subject(&to), message).await {
                Ok(ack) => ack
                    .await
                    .map_err(|e| format!("no acknowledgement for {}: {e}", env.id)),
                Err(e) => Err(format!("publish to society {to}: {e}")),
            };
            match acked {
                Ok(a) => {
                    next = line.end;
                    sent += 1;
                    if a.duplicate {
                        tracing::debug!(id = %env.id, "already in the stream");
                        dups += 1;
                    }
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if next != cursor {
            shared.update(|s| {
                s.cursor = next;
                s.published += sent - dups;
            });
        }
        match failed {
            None => backoff = Duration::from_millis(100),
            Some(e) => {
                shared.error("publishing", e);
                pause(shared, backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

fn refuse(shared: &Shared, what: String) {
    tracing::error!(error = %what, "federation: line skipped");
    shared.update(|s| {
        s.refused += 1;
        s.last_error = Some(what);
    });
}

/// Ids recently received, to recognise a message delivered again.
struct Seen {
    ids: HashSet<MsgId>,
    order: VecDeque<MsgId>,
}

impl Seen {
    /// Seeded from the supervisor's inbox: what the last process appended
    /// but may not have acknowledged.
    fn load(layout: &Layout) -> Seen {
        let mut seen = Seen {
            ids: HashSet::new(),
            order: VecDeque::new(),
        };
        #[derive(Deserialize)]
        struct Probe {
            id: MsgId,
            from: Party,
        }
        let path = layout.supervisor_inbox();
        let mut at = 0;
        while let Ok(batch) = read_lines_bounded(&path, at, 4 << 20, society_core::MAX_RECORD_LIMIT)
        {
            let Some(last) = batch.lines.last() else {
                break;
            };
            at = last.end;
            for line in &batch.lines {
                if let Ok(p) = serde_json::from_slice::<Probe>(&line.bytes) {
                    if p.from.society().is_some() {
                        seen.insert(p.id);
                    }
                }
            }
        }
        seen
    }

    fn insert(&mut self, id: MsgId) -> bool {
        if !self.ids.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > SEEN {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        true
    }
}

/// Consumes this society's stream into the supervisor's inbox.
async fn receive(
    layout: &Layout,
    js: &jetstream::Context,
    name: &SocietyName,
    cfg: &FederationConfig,
    shared: &Shared,
) {
    let mut seen = Seen::load(layout);
    let inbox = layout.supervisor_inbox();
    let mut messages = None;
    let mut consumer = None;
    let mut opened_at = u64::MAX;
    loop {
        if shared.stopping() {
            return;
        }
        // A new connection (or the first): the consumer is made afresh, so
        // that whatever was delivered to a connection or a process that is
        // gone comes again at once and in stream order — before anything
        // newer — instead of after the ack wait, behind newer messages.
        let connection = shared.connections.load(Ordering::SeqCst);
        if connection != opened_at {
            messages = None;
            match open_consumer(js, name, cfg).await {
                Ok(c) => {
                    consumer = Some(c);
                    opened_at = connection;
                }
                Err(e) => {
                    shared.error("cannot open this society's stream", e);
                    pause(shared, Duration::from_secs(1)).await;
                    continue;
                }
            }
        }
        let Some(consumer) = consumer.as_ref() else {
            continue;
        };
        // One continuous pull: a message is handed over as soon as the
        // server has it (no polling), up to FETCH ahead of the acks.
        let stream = match messages.as_mut() {
            Some(s) => s,
            None => match consumer
                .stream()
                .max_messages_per_batch(FETCH)
                // Short pulls with heartbeats: a pull the server lost in a
                // restart is noticed within seconds, not at its expiry.
                .expires(Duration::from_secs(5))
                .heartbeat(Duration::from_secs(1))
                .messages()
                .await
            {
                Ok(s) => messages.insert(s),
                Err(e) => {
                    shared.error("cannot pull from this society's stream", e);
                    pause(shared, Duration::from_millis(500)).await;
                    continue;
                }
            },
        };
        let first = tokio::select! {
            m = stream.next() => m,
            _ = stopping(shared) => return,
        };
        let mut batch = match first {
            Some(Ok(m)) => vec![m],
            Some(Err(e)) => {
                // Missed heartbeats while the server was away, and the
                // like: the stream goes on by itself.
                shared.error("pulling from this society's stream", e);
                continue;
            }
            None => {
                messages = None;
                continue;
            }
        };
        // And whatever else has arrived: one append and one fsync for all.
        while batch.len() < FETCH {
            match futures_util::FutureExt::now_or_never(stream.next()) {
                Some(Some(Ok(m))) => batch.push(m),
                Some(Some(Err(e))) => {
                    shared.error("pulling from this society's stream", e);
                    break;
                }
                Some(None) => {
                    messages = None;
                    break;
                }
                None => break,
            }
        }
        let mut lines: Vec<(MsgId, Vec<u8>)> = Vec::new();
        let mut dups = 0;
        for m in &batch {
            match accept(&m.payload, name) {
                Ok(env) => {
                    if seen.ids.contains(&env.id) || lines.iter().any(|(id, _)| *id == env.id) {
                        dups += 1;
                    } else {
                        lines.push((env.id, env.to_line()));
                    }
                }
                Err(why) => refuse(shared, why),
            }
        }
        let appended = append(&inbox, &mut lines, shared).await;
        if !appended {
            return;
        }
        for (id, _) in &lines {
            seen.insert(*id);
        }
        let received = lines.len() as u64;
        shared.update(|s| {
            s.received += received;
            s.duplicates += dups;
        });
        // Acknowledged only now that the inbox holds them: one not
        // acknowledged (the link dropped, this process dies) comes again
        // and is recognised by its id.
        for m in &batch {
            if let Err(e) = m.ack().await {
                tracing::debug!(error = %e, "ack not sent; the message will come again");
            }
        }
    }
}

/// This society's stream and a fresh durable consumer on it: the old one,
/// if any, is deleted first (it is this supervisor's alone: the society's
/// lock allows no other), which hands every message not yet acknowledged
/// to the new one, in stream order. What was appended already is
/// recognised by its id.
async fn open_consumer(
    js: &jetstream::Context,
    name: &SocietyName,
    cfg: &FederationConfig,
) -> Result<consumer::PullConsumer, Box<dyn std::error::Error + Send + Sync>> {
    let stream = js
        .get_or_create_stream(stream_config(name, cfg.replicas))
        .await?;
    let durable = consumer_name(name);
    if let Err(e) = stream.delete_consumer(&durable).await {
        let absent = matches!(e.kind(), stream::ConsumerErrorKind::JetStream(j)
            if j.error_code() == jetstream::ErrorCode::CONSUMER_NOT_FOUND);
        if !absent {
            return Err(e.into());
        }
    }
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some(durable),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait: ACK_WAIT,
            max_ack_pending: 4 * FETCH as i64,
            ..Default::default()
        })
        .await?;
    Ok(consumer)
}

/// A received message, checked: an envelope, from another society, for
/// this one; its `to` made local.
fn accept(payload: &[u8], name: &SocietyName) -> Result<Envelope, String> {
    let mut env = Envelope::parse(payload).map_err(|e| format!("a received message: {e}"))?;
    if env.from.society().is_none() {
        return Err(format!(
            "received message {} does not say which society sent it (from {})",
            env.id, env.from
        ));
    }
    if env.to.society() != Some(name) {
        return Err(format!(
            "received message {} is for {}, not society {name}",
            env.id, env.to
        ));
    }
    env.to = env.to.local().clone();
    Ok(env)
}

/// Appends the batch to the supervisor's inbox, retrying (a full disk, a
/// file replaced by a directory) until it lands or the bridge stops. A
/// write that failed part-way may have left whole records: they are found
/// by their ids and not written again.
async fn append(
    inbox: &std::path::Path,
    lines: &mut Vec<(MsgId, Vec<u8>)>,
    shared: &Shared,
) -> bool {
    let mut wait = Duration::from_millis(100);
    loop {
        if lines.is_empty() {
            return true;
        }
        let before = std::fs::metadata(inbox).map_or(0, |m| m.len());
        let result = Appender::open(inbox, Durability::Durable, society_core::MAX_RECORD_LIMIT)
            .map_err(society_core::FormatError::from)
            .and_then(|mut a| {
                let records: Vec<&[u8]> = lines.iter().map(|(_, l)| l.as_slice()).collect();
                a.append_batch(&records)
            });
        match result {
            Ok(_) => return true,
            Err(e) => {
                shared.error("cannot append to the supervisor's inbox", e);
                if let Ok(batch) = read_lines_bounded(
                    inbox,
                    before,
                    usize::MAX >> 1,
                    society_core::MAX_RECORD_LIMIT,
                ) {
                    #[derive(Deserialize)]
                    struct Probe {
                        id: MsgId,
                    }
                    let landed: HashSet<MsgId> = batch
                        .lines
                        .iter()
                        .filter_map(|l| serde_json::from_slice::<Probe>(&l.bytes).ok())
                        .map(|p| p.id)
                        .collect();
                    lines.retain(|(id, _)| !landed.contains(id));
                }
                pause(shared, wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
                if shared.stopping() {
                    return false;
                }
            }
        }
    }
}

/// `society federation status`: the configuration, the link as the bridge
/// last wrote it, and what waits in `outbound.jsonl` (FORMAT.md,
/// "Federation").
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// This society's name, if `[society] name` is set.
    pub society: Option<String>,
    /// Whether `[federation]` is configured.
    pub federated: bool,
    pub servers: Vec<String>,
    /// The supervisor running the bridge; none when it is down.
    pub supervisor: Option<u32>,
    /// Connected now (false whenever the supervisor is down).
    pub connected: bool,
    pub since: Option<String>,
    /// `outbound.jsonl`'s length, and the bytes the server acknowledged.
    pub outbound_bytes: u64,
    pub cursor: u64,
    /// Messages in `outbound.jsonl` past the cursor (not yet acknowledged).
    pub pending: u64,
    pub published: u64,
    pub received: u64,
    pub duplicates: u64,
    pub refused: u64,
    pub last_error: Option<String>,
    pub updated: Option<String>,
}

pub fn report(layout: &Layout) -> Result<Report, crate::client::ClientError> {
    let cfg = crate::config::SocietyConfig::load(&layout.society_toml())?;
    let state = LinkState::load(layout)?;
    let supervisor = crate::client::supervisor::supervisor_pid(layout);
    let path = layout.federation_outbound();
    let outbound_bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    let cursor = state.as_ref().map_or(0, |s| s.live_cursor(layout));
    let mut pending = 0;
    let mut at = cursor.min(outbound_bytes);
    while let Ok(batch) = read_lines_bounded(&path, at, 4 << 20, society_core::MAX_RECORD_LIMIT) {
        let Some(last) = batch.lines.last() else {
            break;
        };
        pending += batch.lines.len() as u64;
        at = last.end;
    }
    let servers = cfg
        .federation
        .as_ref()
        .map(|f| {
            f.nats_url
                .split(',')
                .map(|u| u.trim().to_string())
                .collect()
        })
        .unwrap_or_default();
    let live = state
        .as_ref()
        .filter(|s| supervisor.is_some_and(|pid| pid == s.pid));
    Ok(Report {
        society: cfg.society.name.as_ref().map(|n| n.to_string()),
        federated: cfg.federation.is_some(),
        servers,
        supervisor,
        connected: live.is_some_and(|s| s.connected),
        since: live.and_then(|s| s.since.clone()),
        outbound_bytes,
        cursor,
        pending,
        published: live.map_or(0, |s| s.published),
        received: live.map_or(0, |s| s.received),
        duplicates: live.map_or(0, |s| s.duplicates),
        refused: live.map_or(0, |s| s.refused),
        last_error: state.as_ref().and_then(|s| s.last_error.clone()),
        updated: state.map(|s| s.updated),
    })
}

/// After `society config reload`: what the running supervisor's bridge
/// uses differs from `society.toml`'s `[society]` and `[federation]`, which
/// are read only when the supervisor starts. `None` when they agree (or no
/// supervisor runs).
pub fn reload_note(layout: &Layout) -> Option<String> {
    let pid = crate::client::supervisor::supervisor_pid(layout)?;
    let cfg = crate::config::SocietyConfig::load(&layout.society_toml()).ok()?;
    let running = LinkState::load(layout)
        .ok()
        .flatten()
        .filter(|s| s.pid == pid);
    let wanted = match (&cfg.society.name, &cfg.federation) {
        (Some(name), Some(f)) => Some((
            name.to_string(),
            f.nats_url
                .split(',')
                .map(|u| u.trim().to_string())
                .collect::<Vec<_>>(),
        )),
        _ => None,
    };
    let have = running.map(|s| (s.society, s.servers));
    (wanted != have).then(|| {
        "[society] and [federation] take effect when the supervisor starts: `society down && society up` applies them".to_string()
    })
}
