//! Group commit: when several inbox lines wait and nothing is in flight, the
//! agent handles them under one in-flight record and commits them together —
//! one checkpoint before, one outbox append (one fsync), one checkpoint after
//! — instead of paying those per message.
//!
//! The delivery contract is unchanged. A crash mid-batch leaves the in-flight
//! record with `batch_end`; the next process replays `[offset, batch_end)` one
//! line at a time through the single-message path, each checked against the
//! outputs written since the batch began, so nothing is lost or doubled and a
//! poison message is isolated and counted like any other. A batch closes after
//! [`BATCH_WINDOW`] of brain time, so slow brains (an LLM, a program) still go
//! one message at a time and keep their latency; a brain error, a stop
//! request or an oversize output ends the batch at that message, which
//! then takes the single path. A brain error is that message's attempt 1,
//! recorded (in flight, `message_failed`) like any other, so the single path
//! goes on with attempt 2 and no attempt goes unseen.

use super::{Agent, AgentError};
use serde_json::json;
use society_brains::BrainError;
use society_core::jsonl::Line;
use society_core::kinds::event;
use society_core::state::{CurrentMessage, InFlight, LiveState};
use society_core::{time, MsgId};
use std::time::{Duration, Instant};

/// Most lines in one batch.
const BATCH_LINES: usize = 256;
/// Brain time after which no further message joins the batch.
const BATCH_WINDOW: Duration = Duration::from_millis(5);

impl Agent {
    /// Handles a prefix of `lines` as one batch; returns how many lines it
    /// consumed (0: use the single-message path for `lines[0]`) and whether
    /// the pass over the inbox ends here (a failed attempt, to be retried).
    pub(crate) fn handle_batch(&mut self, lines: &[Line]) -> Result<(usize, bool), AgentError> {
        if lines.len() < 2 || self.ckpt.in_flight.is_some() || self.ckpt.replay.is_some() {
            return Ok((0, false));
        }
        let Ok(first) = self.envelope(&lines[0]) else {
            return Ok((0, false));
        };
        let lines = &lines[..lines.len().min(BATCH_LINES)];
        self.at_outbox_end(|agent, outbox_offset| {
            agent.ckpt.in_flight = Some(InFlight {
                id: first.id,
                attempt: 1,
                started: time::now_rfc3339(),
                offset: lines[0].offset,
                outbox_offset,
                last_error: None,
                batch_end: Some(lines[lines.len() - 1].end),
                not_before: None,
            });
            agent.save().map_err(Into::into)
        })?;
        let current = CurrentMessage {
            id: first.id,
            kind: first.kind.clone(),
            case: first.case.clone(),
            attempt: 1,
        };
        self.set_state(LiveState::Running, Some(current));
        let started = Instant::now();
        let mut outputs: Vec<Vec<u8>> = Vec::new();
        let mut dead: Vec<Vec<u8>> = Vec::new();
        let mut handled: Vec<MsgId> = Vec::new();
        let mut events = Vec::new();
        let mut consumed = 0;
        // A brain error ends the batch; the attempt it cost is recorded below.
        let mut failure = None;
        for line in lines {
            if self.stopping() || (consumed > 0 && started.elapsed() >= BATCH_WINDOW) {
                break;
            }
            let env = match self.envelope(line) {
                Ok(env) => env,
                Err(reason) => {
                    let rec = self.dead_letter_record(line, None, &reason);
                    // The process before us may have written it just before dying.
                    let recorded = self.maybe_seen(line.offset)
                        && super::delivery::inbox_dead_letter_exists(
                            &self.paths.deadletter(),
                            self.ckpt.inbox_seg,
                            line.offset,
                        )?;
                    if !recorded {
                        dead.push(rec);
                    }
                    self.ckpt.dead_lettered += 1;
                    consumed += 1;
                    continue;
                }
            };
            if (self.ckpt.seen(&env.id) && !self.retry_pending(&env.id))
                || handled.contains(&env.id)
            {
                self.activity.event(
                    event::DUPLICATE_DROPPED,
                    json!({"id": env.id, "from": env.from}),
                );
                consumed += 1;
                continue;
            }
            let t = Instant::now();
            let result = self.think(&env, 1);
            let records = match result {
                Ok(actions) => match self.outputs(&env, actions) {
                    Ok(r) => r,
                    Err(_) => break, // oversize: the single path records the failure
                },
                Err(BrainError::Abandoned) => break,
                Err(e) => {
                    failure = Some((line, env, e));
                    break;
                }
            };
            // Logged once the outputs are written: `message_handled` is
            // what `fsck --repair` takes as proof that a message was handled.
            events.push((
                json!({"id": env.id, "from": env.from, "type": env.kind, "case": env.case, "attempt": 1, "offset": line.offset}),
                json!({"id": env.id, "attempt": 1, "outputs": records.len(), "ms": t.elapsed().as_millis() as u64, "batch": true}),
            ));
            outputs.extend(
                records
                    .into_iter()
                    // Written before a power cut took the checkpoint back.
                    .filter(|(id, _)| !self.lost_outputs.contains(id))
                    .map(|(_, r)| r),
            );
            self.ckpt.experience.note(&env);
            self.meta_dirty = true;
            handled.push(env.id);
            consumed += 1;
        }
        if !outputs.is_empty() {
            self.outbox.append_batch(&outputs)?;
        }
        self.activity.events(
            events
                .into_iter()
                .flat_map(|(received, handled)| {
                    [
                        (event::MESSAGE_RECEIVED, received),
                        (event::MESSAGE_HANDLED, handled),
                    ]
                })
                .collect(),
        );
        if !dead.is_empty() {
            self.deadletter.append_batch(&dead)?;
        }
        self.ckpt.in_flight = None;
        if consumed > 0 {
            self.ckpt.inbox_offset = lines[consumed - 1].end;
            self.ckpt.inbox_lines += consumed as u64;
        }
        for id in handled {
            self.ckpt.remember(id);
            self.ckpt.handled += 1;
        }
        self.save()?;
        let Some((line, env, err)) = failure else {
            return Ok((consumed, false));
        };
        // The failed message's attempt 1 happened: record it as the single
        // path would, so its next attempt is counted as attempt 2.
        self.at_outbox_end(|agent, outbox_offset| {
            agent.ckpt.in_flight = Some(InFlight {
                id: env.id,
                attempt: 1,
                started: time::now_rfc3339(),
                offset: line.offset,
                outbox_offset,
                last_error: None,
                batch_end: None,
                not_before: None,
            });
            agent.save().map_err(Into::into)
        })?;
        self.attempt_on_disk = Some((env.id, 1));
        self.activity.event(
            event::MESSAGE_RECEIVED,
            json!({"id": env.id, "from": env.from, "type": env.kind, "case": env.case, "attempt": 1, "offset": line.offset}),
        );
        match self.brain_failed(line, &env, 1, &err)? {
            super::delivery::Outcome::Advanced => Ok((consumed + 1, false)),
            _ => Ok((consumed, true)),
        }
    }
}
