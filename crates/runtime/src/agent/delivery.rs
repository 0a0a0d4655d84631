//! The delivery contract, one inbox line at a time:
//! record in flight (checkpoint) → run the brain → append outputs → advance the
//! cursor and clear in-flight (checkpoint). A crash anywhere repeats the
//! message (at-least-once into the brain); outputs carry ids derived from the
//! input id and their index, and a retry skips outputs its earlier attempt
//! already wrote (effectively-once in the outbox).

use super::{Agent, AgentError};
use crate::activity;
use serde_json::json;
use society_brains::{Action, BrainError, Context, Hooks};
use society_core::jsonl::{read_lines, Line};
use society_core::kinds::{event, message};
use society_core::layout::names;
use society_core::state::{AgentStatus, CurrentMessage, InFlight, LiveState};
use society_core::{atomic, time, AgentPaths, Envelope, FormatError, MsgId, Party};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub(crate) enum Outcome {
    /// The cursor moved past the line.
    Advanced,
    /// The attempt failed; the line will be read again.
    Retry,
    /// A stop request interrupted the brain; the line stays unconsumed.
    Abandoned,
}

/// Index used for the supervisor report of a dead-lettered message, far
/// from any real output index.
const DEAD_LETTER_REPORT_INDEX: u32 = u32::MAX;

/// Index of an escalation a brain error asks for (an open circuit).
const ESCALATION_REPORT_INDEX: u32 = u32::MAX - 1;

/// Longest excerpt of a bad line kept in `deadletter.jsonl`.
const DEADLETTER_EXCERPT: usize = 64 * 1024;

/// Longest reason kept in a `dead_lettered` record.
const REASON_MAX: usize = 4096;

impl Agent {
    /// The envelope on an inbox line, or why the line is dead-lettered: over
    /// `max_record` (never parsed: the reader kept only its head), not JSON,
    /// not an envelope.
    pub(crate) fn envelope(&self, line: &Line) -> Result<Envelope, String> {
        if let Some(reason) = line.oversize(self.cfg.policy.max_record) {
            return Err(reason);
        }
        Envelope::parse(&line.bytes).map_err(|e| e.to_string())
    }

    pub(crate) fn handle_line(&mut self, line: &Line) -> Result<Outcome, AgentError> {
        let env = match self.envelope(line) {
            Ok(env) => env,
            Err(reason) => {
                self.dead_letter(line, None, &reason)?;
                return Ok(Outcome::Advanced);
            }
        };
        if self.ckpt.seen(&env.id) && !self.retry_pending(&env.id) {
            self.activity.event(
                event::DUPLICATE_DROPPED,
                json!({"id": env.id, "from": env.from}),
            );
            self.advance(line, None)?;
            return Ok(Outcome::Advanced);
        }
        let not_before = self
            .ckpt
            .in_flight
            .as_ref()
            .filter(|f| f.id == env.id)
            .and_then(|f| f.not_before.as_deref())
            .and_then(time::parse_rfc3339);
        if let Some(until) = not_before {
            if !self.wait_until(until) {
                return Ok(Outcome::Abandoned);
            }
        }
        let previous = self.ckpt.in_flight.take().filter(|f| f.id == env.id);
        let attempt = previous.as_ref().map_or(1, |f| f.attempt + 1);
        if attempt > self.cfg.policy.max_attempts {
            let last = previous
                .as_ref()
                .and_then(|f| f.last_error.clone())
                .unwrap_or_else(|| "the process died while handling it".into());
            let reason = format!(
                "failed {} attempts; last error: {last}",
                self.cfg.policy.max_attempts
            );
            let since = previous.as_ref().map_or(0, |f| f.outbox_offset);
            self.report_dead_letter(&env, &reason, since)?;
            self.dead_letter(line, Some(&env), &reason)?;
            return Ok(Outcome::Advanced);
        }
        let known = match (&previous, self.recovering(line.offset)) {
            (Some(f), _) => Some(f.outbox_offset),
            // A line of a batch interrupted by a crash: its outputs may be in
            // the outbox already, anywhere after the batch began.
            (None, Some(batch_outbox)) => Some(batch_outbox),
            (None, None) => None,
        };
        let outbox_offset = self.at_outbox_end(|agent, end| {
            agent.ckpt.in_flight = Some(InFlight {
                id: env.id,
                attempt,
                started: time::now_rfc3339(),
                offset: line.offset,
                outbox_offset: known.unwrap_or(end),
                last_error: None,
                batch_end: None,
                not_before: None,
            });
            agent.save()?;
            Ok(known.unwrap_or(end))
        })?;
        self.attempt_on_disk = Some((env.id, attempt));
        self.activity.event(
            event::MESSAGE_RECEIVED,
            json!({"id": env.id, "from": env.from, "type": env.kind, "case": env.case, "attempt": attempt, "offset": line.offset}),
        );
        self.set_state(
            LiveState::Running,
            Some(CurrentMessage {
                id: env.id,
                kind: env.kind.clone(),
                case: env.case.clone(),
                attempt,
            }),
        );
        let started = Instant::now();
        let result = self.think(&env, attempt);
        let outcome = match result {
            Ok(actions) => match self.emit(&env, actions, outbox_offset) {
                Ok(outputs) => {
                    self.activity.event(
                        event::MESSAGE_HANDLED,
                        json!({"id": env.id, "attempt": attempt, "outputs": outputs, "ms": started.elapsed().as_millis() as u64}),
                    );
                    self.ckpt.experience.note(&env);
                    self.meta_dirty = true;
                    self.advance(line, Some(env.id))?;
                    Outcome::Advanced
                }
                Err(FormatError::RecordTooLarge { size, max, .. }) => self.failed(
                    &env,
                    attempt,
                    format!("an output of {size} bytes exceeds max_record ({max} bytes)"),
                )?,
                Err(e) => return Err(e.into()),
            },
            Err(BrainError::Abandoned) => {
                // Not the message's fault: give the attempt back.
                if let Some(f) = self.ckpt.in_flight.as_mut() {
                    f.attempt -= 1;
                }
                self.save()?;
                self.activity.event(
                    "message_abandoned",
                    json!({"id": env.id, "attempt": attempt}),
                );
                Outcome::Abandoned
            }
            Err(e) => self.brain_failed(line, &env, attempt, &e)?,
        };
        Ok(outcome)
    }

    /// What a brain error means for the message in flight: a permanent one
    /// dead-letters it now, a provider's `Retry-After` defers it without
    /// counting the attempt, anything else is a failed attempt.
    pub(crate) fn brain_failed(
        &mut self,
        line: &Line,
        env: &Envelope,
        attempt: u32,
        err: &BrainError,
    ) -> Result<Outcome, AgentError> {
        let error = err.to_string();
        if let Some((reason, context)) = err.escalation() {
            let since = self.ckpt.in_flight.as_ref().map_or(0, |f| f.outbox_offset);
            self.report_escalation(env, &reason, context, since)?;
        }
        if let Some(wait) = err.wait() {
            let until = time::format_rfc3339(std::time::SystemTime::now() + wait);
            if let Some(f) = self.ckpt.in_flight.as_mut() {
                f.attempt = f.attempt.saturating_sub(1);
                f.not_before = Some(until.clone());
            }
            // Saved first: the event says the wait is on record.
            self.save()?;
            self.activity.event(
                event::MESSAGE_DEFERRED,
                json!({"id": env.id, "attempt": attempt, "until": until, "reason": error}),
            );
            return Ok(Outcome::Retry);
        }
        if !err.is_permanent() {
            return self.failed(env, attempt, error);
        }
        self.activity.event(
            event::MESSAGE_FAILED,
            json!({"id": env.id, "attempt": attempt, "error": error, "permanent": true}),
        );
        let reason = format!("permanent error on attempt {attempt}: {error}");
        let since = self.ckpt.in_flight.as_ref().map_or(0, |f| f.outbox_offset);
        self.report_dead_letter(env, &reason, since)?;
        self.dead_letter(line, Some(env), &reason)?;
        Ok(Outcome::Advanced)
    }

    /// Sleeps until `until`, heartbeating; false if a stop request cut it short.
    fn wait_until(&mut self, until: std::time::SystemTime) -> bool {
        while let Ok(left) = until.duration_since(std::time::SystemTime::now()) {
            if self.stopping() {
                return false;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
            self.beat(false);
        }
        true
    }

    /// Runs the brain on one message, with hooks to heartbeat, log and notice a stop.
    pub(crate) fn call_brain(
        &mut self,
        env: &Envelope,
        attempt: u32,
    ) -> Result<Vec<Action>, BrainError> {
        let gen = self.status.gen;
        let mut hooks = BeatHooks {
            paths: &self.paths,
            status: &mut self.status,
            last_beat: &mut self.last_beat,
            every: self.cfg.policy.heartbeat,
            stop: &self.stop,
            activity: &mut self.activity,
        };
        let mut ctx = Context {
            agent: &self.cfg.id,
            role: &self.cfg.role,
            folder: &self.paths.dir,
            attempt,
            gen,
            hooks: &mut hooks,
        };
        self.brain.handle(&mut ctx, env)
    }

    fn failed(
        &mut self,
        env: &Envelope,
        attempt: u32,
        error: String,
    ) -> Result<Outcome, AgentError> {
        self.activity.event(
            event::MESSAGE_FAILED,
            json!({"id": env.id, "attempt": attempt, "error": error}),
        );
        if let Some(f) = self.ckpt.in_flight.as_mut() {
            f.last_error = Some(error);
        }
        self.save()?;
        // A short pause before the retry, cut short by a stop request.
        let pause = Duration::from_millis(50 * u64::from(attempt)).min(Duration::from_secs(1));
        let end = Instant::now() + pause;
        while Instant::now() < end && !self.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(Outcome::Retry)
    }

    /// Appends the brain's outputs; returns how many messages it wrote.
    fn emit(
        &mut self,
        input: &Envelope,
        actions: Vec<Action>,
        outbox_offset: u64,
    ) -> Result<usize, FormatError> {
        let outputs = self.outputs(input, actions)?;
        let count = outputs.len();
        let already = ids_since(&self.layout, &self.paths.outbox(), outbox_offset)?;
        let records: Vec<Vec<u8>> = outputs
            .into_iter()
            .filter(|(id, _)| !already.contains(id) && !self.lost_outputs.contains(id))
            .map(|(_, r)| r)
            .collect();
        if !records.is_empty() {
            self.outbox.append_batch(&records)?;
            // Outputs written, the message not yet marked handled: its
            // replay must find them (the tests' worst moment).
            society_core::fault::point("agent.outputs.written");
        }
        Ok(count)
    }

    fn report_dead_letter(
        &mut self,
        env: &Envelope,
        reason: &str,
        since: u64,
    ) -> Result<(), FormatError> {
        let mut report = Envelope::new(
            Party::Agent(self.cfg.id.clone()),
            Party::Supervisor,
            message::DEAD_LETTER,
            json!({"agent": self.cfg.id, "message_id": env.id, "from": env.from, "type": env.kind, "reason": reason}),
        );
        report.id = MsgId::derive(&env.id, DEAD_LETTER_REPORT_INDEX);
        report.case = env.case.clone();
        report.gen = self.status.gen;
        if !ids_since(&self.layout, &self.paths.outbox(), since)?.contains(&report.id) {
            self.outbox.append(&report.to_line())?;
        }
        Ok(())
    }

    /// Escalates what a brain error says the orchestrator must know (an
    /// open circuit), once per message: the id is derived from the message's.
    fn report_escalation(
        &mut self,
        env: &Envelope,
        reason: &str,
        context: serde_json::Value,
        since: u64,
    ) -> Result<(), FormatError> {
        let mut report = Envelope::new(
            Party::Agent(self.cfg.id.clone()),
            Party::Supervisor,
            message::ESCALATE,
            json!({"reason": reason, "context": context, "message_id": env.id}),
        );
        report.id = MsgId::derive(&env.id, ESCALATION_REPORT_INDEX);
        report.case = env.case.clone();
        report.gen = self.status.gen;
        if !ids_since(&self.layout, &self.paths.outbox(), since)?.contains(&report.id) {
            self.outbox.append(&report.to_line())?;
        }
        Ok(())
    }

    /// The `dead_lettered` record for a bad inbox line (and its activity event).
    pub(crate) fn dead_letter_record(
        &mut self,
        line: &Line,
        env: Option<&Envelope>,
        reason: &str,
    ) -> Vec<u8> {
        let text = String::from_utf8_lossy(&line.bytes);
        // A cut line (over the reader's bound) is truncated already.
        let truncated = text.len() > DEADLETTER_EXCERPT || line.is_cut();
        // Reasons quote what they refuse; a record about a bad line must
        // itself stay far below `max_record`.
        let reason = &society_core::envelope::excerpt(reason, REASON_MAX);
        let excerpt: String = if truncated {
            text.char_indices()
                .take_while(|(i, _)| *i < DEADLETTER_EXCERPT)
                .map(|(_, c)| c)
                .collect()
        } else {
            text.into_owned()
        };
        let mut fields = json!({"offset": line.offset, "id": env.map(|e| e.id), "reason": reason});
        if self.ckpt.inbox_seg > 0 {
            fields["seg"] = json!(self.ckpt.inbox_seg);
        }
        self.activity.event(event::MESSAGE_DEAD_LETTERED, fields);
        activity::record(
            event::DEAD_LETTERED,
            self.cfg.id.as_str(),
            self.status.gen,
            {
                let mut fields = json!({"file": names::INBOX, "offset": line.offset, "id": env.map(|e| e.id), "reason": reason, "line": excerpt, "truncated": truncated});
                // Offsets restart in each segment of a rotated inbox.
                if self.ckpt.inbox_seg > 0 {
                    fields["seg"] = json!(self.ckpt.inbox_seg);
                }
                fields
            },
        )
    }

    fn dead_letter(
        &mut self,
        line: &Line,
        env: Option<&Envelope>,
        reason: &str,
    ) -> Result<(), AgentError> {
        let rec = self.dead_letter_record(line, env, reason);
        // A generation killed after writing this record but before moving
        // its cursor leaves the line first in our inbox: write it only once.
        let recorded = (self.maybe_seen(line.offset) || self.recovering(line.offset).is_some())
            && inbox_dead_letter_exists(
                &self.paths.deadletter(),
                self.ckpt.inbox_seg,
                line.offset,
            )?;
        if !recorded {
            self.deadletter.append(&rec)?;
            // Recorded, the cursor not yet past the line: the next process
            // must not record it twice (the tests' worst moment).
            society_core::fault::point("agent.dead_lettered");
        }
        self.ckpt.dead_lettered += 1;
        // Remembered, so a duplicate of it is dropped, but not counted as
        // handled: `handled` counts successes only (as `fsck --repair`'s
        // rebuild does), `dead_lettered` the rest.
        if let Some(env) = env {
            self.ckpt.remember(env.id);
        }
        self.advance(line, None)
    }

    /// The outbox offset of the interrupted batch that covers this inbox line.
    pub(crate) fn recovering(&self, offset: u64) -> Option<u64> {
        self.ckpt
            .replay
            .filter(|r| offset < r.end)
            .map(|r| r.outbox_offset)
    }

    /// Moves the cursor past `line`; `handled` is the id of a message
    /// handled successfully.
    fn advance(&mut self, line: &Line, handled: Option<MsgId>) -> Result<(), AgentError> {
        self.ckpt.inbox_offset = line.end;
        self.ckpt.inbox_lines += 1;
        if self.ckpt.replay.is_some_and(|r| line.end >= r.end) {
            self.ckpt.replay = None;
        }
        self.ckpt.in_flight = None;
        if let Some(id) = handled {
            self.ckpt.remember(id);
            self.ckpt.handled += 1;
        }
        self.save()?;
        Ok(())
    }

    /// Writes the live checkpoint (`checkpoint.live.json`, no fsync): the
    /// state after every step. The fsynced `checkpoint.json` follows when
    /// the agent settles (see `AgentCheckpoint::read`).
    pub(crate) fn save(&mut self) -> Result<(), FormatError> {
        self.stamp()?;
        atomic::write_json(&self.paths.live_checkpoint(), &self.ckpt, false)?;
        self.unsettled = true;
        Ok(())
    }

    /// Writes `checkpoint.json`, fsynced when durable: what a power cut
    /// brings the agent back to.
    pub(crate) fn settle(&mut self) -> Result<(), FormatError> {
        self.stamp()?;
        atomic::write_json(&self.paths.checkpoint(), &self.ckpt, self.durable)?;
        self.unsettled = false;
        self.last_settle = Instant::now();
        Ok(())
    }

    /// Outputs in the outbox after the checkpoint's `outbox_end`: written
    /// by a process whose live checkpoint a power cut lost (after a crash,
    /// only the last message's, which its in-flight record covers too). A
    /// message handled again does not write them twice.
    pub(crate) fn find_lost_outputs(&mut self) -> Result<(), FormatError> {
        self.lost_outputs = match self.ckpt.outbox_end {
            Some(end) => ids_since(&self.layout, &self.paths.outbox(), end)?,
            None => HashSet::new(),
        };
        Ok(())
    }

    /// A new `seq` (the newer file wins) and the outbox's length now.
    fn stamp(&mut self) -> Result<(), FormatError> {
        self.ckpt.seq += 1;
        self.ckpt.outbox_end = Some(file_len(&self.paths.outbox())?);
        Ok(())
    }

    /// Might a process before this one have handled the inbox line at
    /// `offset` (and written its dead letter) without this process's
    /// checkpoint saying so? Any line that was in the inbox when this
    /// process started, after the cursor it started from.
    pub(crate) fn maybe_seen(&self, offset: u64) -> bool {
        self.seen_before.0 == self.ckpt.inbox_seg && offset < self.seen_before.1
    }
}

/// Ids of the envelopes in `path` after `offset` (the outputs of an earlier
/// attempt). The router rotates the outbox once it has routed all of it; if
/// that happened since `offset` was taken (the live file is now shorter),
/// the outputs may be at the end of the newest segment and in the new live
/// file, and both are read.
pub(crate) fn ids_since(
    layout: &society_core::Layout,
    path: &std::path::Path,
    offset: u64,
) -> Result<HashSet<MsgId>, FormatError> {
    let mut ids = HashSet::new();
    let mut cursor = offset;
    if offset > file_len(path)? {
        if let Some(seg) = society_core::segments::list(layout, path)?.pop() {
            let bytes = society_core::segments::read_segment(&seg)?;
            let tail = bytes.get(offset as usize..).unwrap_or_default();
            ids.extend(
                tail.split(|b| *b == b'\n')
                    .filter_map(|l| Envelope::parse(l).ok())
                    .map(|e| e.id),
            );
        }
        cursor = 0;
    }
    loop {
        let batch = read_lines(path, cursor, 1 << 20)?;
        if batch.lines.is_empty() {
            return Ok(ids);
        }
        for line in &batch.lines {
            if let Ok(env) = Envelope::parse(&line.bytes) {
                ids.insert(env.id);
            }
        }
        cursor = batch.next;
    }
}

/// Does `deadletter.jsonl` hold the record of the inbox line at `offset`?
pub(crate) fn inbox_dead_letter_exists(
    path: &std::path::Path,
    seg: u64,
    offset: u64,
) -> Result<bool, FormatError> {
    let mut cursor = 0;
    loop {
        let batch = read_lines(path, cursor, 1 << 20)?;
        if batch.lines.is_empty() {
            return Ok(false);
        }
        for line in &batch.lines {
            let rec: serde_json::Value = match serde_json::from_slice(&line.bytes) {
                Ok(v) => v,
                Err(_) => continue,
            };
            if rec["file"] == names::INBOX
                && rec["offset"] == offset
                && rec["seg"].as_u64().unwrap_or(0) == seg
            {
                return Ok(true);
            }
        }
        cursor = batch.next;
    }
}

impl Agent {
    /// Runs `f` with the outbox's length while holding its lock — the lock a
    /// rotation of the outbox takes too. The in-flight record that remembers
    /// where this message's outputs begin is saved inside: the router then
    /// either sees it (and does not rotate the outbox under the message) or
    /// rotated before (and the length is the new file's).
    pub(crate) fn at_outbox_end<T>(
        &mut self,
        f: impl FnOnce(&mut Agent, u64) -> Result<T, AgentError>,
    ) -> Result<T, AgentError> {
        use std::os::unix::fs::MetadataExt;
        let path = self.paths.outbox();
        let file = loop {
            // Never through a symbolic link (`confine`).
            let file = society_core::confine::open(
                &path,
                nix::fcntl::OFlag::O_RDWR
                    | nix::fcntl::OFlag::O_APPEND
                    | nix::fcntl::OFlag::O_CREAT,
                society_core::layout::FILE_MODE,
            )
            .map_err(|e| society_core::IoError::new("open", &path, e))?;
            file.lock()
                .map_err(|e| society_core::IoError::new("lock", &path, e))?;
            let ours = file
                .metadata()
                .map_err(|e| society_core::IoError::new("stat", &path, e))?;
            let live = std::fs::metadata(&path).ok();
            if live.is_some_and(|m| m.ino() == ours.ino() && m.dev() == ours.dev()) {
                break file;
            }
            // Rotated while we waited: the path names a new file now.
        };
        let len = file
            .metadata()
            .map_err(|e| society_core::IoError::new("stat", &path, e))?
            .len();
        let result = f(self, len);
        let _ = file.unlock();
        result
    }
}

pub(crate) fn file_len(path: &std::path::Path) -> Result<u64, FormatError> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(m.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(society_core::IoError::new("stat", path, e).into()),
    }
}

/// Lets a brain heartbeat and notice a stop while it works.
struct BeatHooks<'a> {
    paths: &'a AgentPaths,
    status: &'a mut AgentStatus,
    last_beat: &'a mut Instant,
    every: Duration,
    stop: &'a AtomicBool,
    activity: &'a mut crate::activity::Log,
}

impl BeatHooks<'_> {
    fn write_status(&mut self) {
        self.status.ts = time::now_rfc3339();
        super::heartbeat(self.paths, self.status);
        *self.last_beat = Instant::now();
    }
}

impl Hooks for BeatHooks<'_> {
    fn heartbeat(&mut self) {
        if self.last_beat.elapsed() >= self.every / 2 {
            self.write_status();
        }
    }

    fn should_stop(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn log(&mut self, event: &str, fields: serde_json::Value) {
        self.activity.event(event, fields);
    }

    /// Written at once: the record must exist before this process can die
    /// and leave the group behind (see `agent/leftover.rs`).
    fn child_group(&mut self, pgid: Option<i32>) {
        self.status.tool_pgid = pgid;
        self.write_status();
    }
}
