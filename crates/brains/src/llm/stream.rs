//! Streamed answers (`stream = true`): the model's answer arrives as
//! server-sent events, and the wait is bounded per chunk, not per request.
//!
//! Why. A slow local model may take minutes to answer in full while
//! producing tokens all along; one whole-request `timeout` must then be
//! either long enough to let it finish — and so slow to notice a server
//! that died — or short enough to notice, and cut answers that were
//! progressing. With a stream the question becomes "has anything arrived
//! lately?": `stall_timeout` bounds every silence — until the response
//! starts, and between two chunks — and `timeout` is not used.
//!
//! How. A helper thread sends the request and reads the body in chunks as
//! they come, passing each over a channel; the brain's thread parses the
//! events ([`sse`]) and assembles them ([`openai`], [`anthropic`]) into
//! exactly the JSON the same request without `stream` would have returned,
//! so parsing, usage accounting, the truncation and empty-answer checks and
//! the thinking blocks kept in the conversation are the non-streaming ones.
//! Meanwhile it heartbeats and watches for a stop request, as for any call.
//! A silence longer than `stall_timeout` abandons the request (the helper's
//! read times out too, which drops the connection) and is a retryable
//! transport failure whose reason names `stall_timeout` and the seconds
//! since the last chunk. An `error` event, or a stream that ends before its
//! terminal event (`data: [DONE]`, `message_stop`), is a retryable failure
//! too — never a silently shortened answer. A non-2xx status is read whole
//! and classified as without streaming (its body is not a stream), and so
//! is a 2xx answer that is not `text/event-stream` (a server that ignored
//! `stream`).

pub(crate) mod anthropic;
pub(crate) mod openai;
pub(crate) mod sse;

use super::config::{LlmConfig, Provider};
use super::error::LlmError;
use super::http::{describe, CallError, Raw, Transport};
use crate::Hooks;
use serde_json::Value;
use std::io::Read;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Where an event leaves the assembly of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    More,
    /// The terminal event: the answer is complete.
    Done,
}

/// A stream that cannot give an answer.
#[derive(Debug)]
pub enum Broken {
    /// The provider said so (an `error` event): worth another try.
    Retry(String),
    /// Not the protocol: the same request would fail the same way.
    Malformed(String),
}

/// `body` asking for a stream.
pub fn request_body(provider: Provider, body: &Value) -> Value {
    let mut body = body.clone();
    match provider {
        Provider::Openai => super::openai::streaming(&mut body),
        Provider::Anthropic => super::anthropic::streaming(&mut body),
    }
    body
}

enum Answer {
    Openai(openai::Answer),
    Anthropic(anthropic::Answer),
}

impl Answer {
    fn event(&mut self, ev: &sse::Event) -> Result<Step, Broken> {
        match self {
            Answer::Openai(a) => a.event(ev),
            Answer::Anthropic(a) => a.event(ev),
        }
    }

    fn finish(self) -> Value {
        match self {
            Answer::Openai(a) => a.answer(),
            Answer::Anthropic(a) => a.answer(),
        }
    }

    fn terminal(&self) -> &'static str {
        match self {
            Answer::Openai(_) => openai::TERMINAL,
            Answer::Anthropic(_) => anthropic::TERMINAL,
        }
    }
}

/// What the helper thread passes on.
enum Piece {
    Head {
        status: u16,
        retry_after: Option<String>,
        events: bool,
    },
    Bytes(Vec<u8>),
    End,
    SendFailed(reqwest::Error),
    ReadFailed(std::io::Error),
}

/// Sends `req` and waits for its streamed answer (see the module notes).
pub(super) fn exchange(
    req: reqwest::blocking::RequestBuilder,
    cfg: &LlmConfig,
    hooks: &mut dyn Hooks,
) -> Result<Result<Raw, Transport>, CallError> {
    let stall = cfg.stall_timeout();
    // No per-request timeout: reqwest would make it a deadline for the whole
    // exchange. The client's own (`stall_timeout`, see `Llm::client`) bounds
    // each read, so the helper gives up on a stall too, dropping the
    // connection, instead of reading a dead socket forever.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || read(req, &tx));
    let started = Instant::now();
    let mut last = started;
    let mut head: Option<(u16, Option<String>, bool)> = None;
    let mut plain = Vec::new();
    let mut parser = sse::Parser::default();
    let mut answer = match cfg.provider {
        Provider::Openai => Answer::Openai(openai::Answer::default()),
        Provider::Anthropic => Answer::Anthropic(anthropic::Answer::default()),
    };
    let (mut chunks, mut first) = (0u64, None::<Duration>);
    let stalled = |last: Instant, chunks: u64| {
        Transport {
        why: format!(
            "stream stalled: nothing from {} for {:.1}s, longer than stall_timeout ({}); {chunks} chunks had arrived",
            cfg.endpoint(),
            last.elapsed().as_secs_f64(),
            humantime::format_duration(stall)
        ),
        sent: true,
    }
    };
    loop {
        hooks.heartbeat();
        if hooks.should_stop() {
            // The helper ends at its next read, or with the process.
            return Err(CallError::Abandoned);
        }
        let piece = match rx.recv_timeout(Duration::from_millis(100).min(stall)) {
            Ok(piece) => piece,
            Err(mpsc::RecvTimeoutError::Timeout) if last.elapsed() > stall => {
                return Ok(Err(stalled(last, chunks)))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Ok(Err(Transport {
                    why: "the HTTP thread ended without an answer".into(),
                    sent: true,
                }))
            }
        };
        match piece {
            Piece::Head {
                status,
                retry_after,
                events,
            } => {
                last = Instant::now();
                head = Some((status, retry_after, events && (200..300).contains(&status)));
            }
            Piece::Bytes(bytes) => {
                last = Instant::now();
                chunks += 1;
                first.get_or_insert_with(|| started.elapsed());
                let Some((status, retry_after, true)) = &head else {
                    plain.extend(bytes);
                    continue;
                };
                for ev in parser.feed(&bytes) {
                    match answer.event(&ev) {
                        Ok(Step::More) => {}
                        Ok(Step::Done) => {
                            tracing::debug!(
                                provider = cfg.provider.name(),
                                chunks,
                                first_chunk_ms = first.unwrap_or_default().as_millis() as u64,
                                total_ms = started.elapsed().as_millis() as u64,
                                "streamed answer complete"
                            );
                            return Ok(Ok(Raw {
                                status: *status,
                                retry_after: retry_after.clone(),
                                body: answer.finish().to_string(),
                            }));
                        }
                        Err(Broken::Retry(why)) => return Ok(Err(Transport { why, sent: true })),
                        Err(Broken::Malformed(reason)) => {
                            return Err(LlmError::Malformed {
                                provider: cfg.provider.name(),
                                reason,
                            }
                            .into())
                        }
                    }
                }
            }
            Piece::End => {
                let mid = if parser.pending() {
                    ", in the middle of an event"
                } else {
                    ""
                };
                let cut = format!(
                    "the stream ended before its last event ({}) after {chunks} chunks{mid}",
                    answer.terminal()
                );
                return Ok(match head {
                    Some((_, _, true)) => Err(Transport {
                        why: cut,
                        sent: true,
                    }),
                    Some((status, retry_after, false)) => Ok(Raw {
                        status,
                        retry_after,
                        body: String::from_utf8_lossy(&plain).into_owned(),
                    }),
                    None => Err(Transport {
                        why: "the connection ended before any response".into(),
                        sent: true,
                    }),
                });
            }
            Piece::SendFailed(e) if e.is_timeout() => return Ok(Err(stalled(last, chunks))),
            Piece::SendFailed(e) => {
                return Ok(Err(Transport {
                    why: describe(&e, cfg),
                    sent: !e.is_connect(),
                }))
            }
            Piece::ReadFailed(e) if is_timeout(&e) => return Ok(Err(stalled(last, chunks))),
            Piece::ReadFailed(e) => {
                return Ok(Err(Transport {
                    why: format!("reading the answer failed after {chunks} chunks: {e}"),
                    sent: true,
                }))
            }
        }
    }
}

/// The helper thread: the response's head, then its body chunk by chunk.
/// Stops reading (dropping the connection) once nobody listens.
fn read(req: reqwest::blocking::RequestBuilder, tx: &mpsc::Sender<Piece>) {
    let mut resp = match req.send() {
        Ok(resp) => resp,
        Err(e) => {
            let _ = tx.send(Piece::SendFailed(e));
            return;
        }
    };
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let head = Piece::Head {
        status: resp.status().as_u16(),
        retry_after: header("retry-after"),
        events: header("content-type").is_some_and(|t| t.contains("text/event-stream")),
    };
    if tx.send(head).is_err() {
        return;
    }
    let mut buf = vec![0; 16 * 1024];
    loop {
        let piece = match resp.read(&mut buf) {
            Ok(0) => Piece::End,
            Ok(n) => Piece::Bytes(buf[..n].to_vec()),
            Err(e) => Piece::ReadFailed(e),
        };
        let last = !matches!(piece, Piece::Bytes(_));
        if tx.send(piece).is_err() || last {
            return;
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::TimedOut
        || e.get_ref()
            .and_then(|inner| inner.downcast_ref::<reqwest::Error>())
            .is_some_and(reqwest::Error::is_timeout)
}
