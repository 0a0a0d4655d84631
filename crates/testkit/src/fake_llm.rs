//! A scripted model server on `127.0.0.1:0` for the `llm` brain's tests.
//!
//! It speaks plain HTTP/1.1 (one request per connection, `Connection:
//! close`), answers any path (so it serves both `/v1/chat/completions` and
//! `/v1/messages`), and replies from a queue the test fills: tool calls,
//! text, errors with or without `Retry-After`, malformed bodies, delays.
//! Every request is recorded (path, headers, JSON body, arrival time) before
//! its reply is chosen, so a test can assert exactly how many calls were made
//! and what history each one carried. An empty queue answers 500 with a
//! message saying so, which makes an unexpected extra call visible.
//!
//! Streamed replies (`openai::stream`, `anthropic::stream`, ...) are written
//! as server-sent events, one event per write, each after its own delay
//! ([`Reply::every`]); a reply can stall before a given event
//! ([`Reply::stall_before`]) or end before its terminal event
//! ([`Reply::cut_after`]).

use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Request {
    pub at: Instant,
    pub path: String,
    /// Header names lower-cased.
    pub headers: BTreeMap<String, String>,
    pub body: Value,
}

/// One scripted reply.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
    /// A streamed body: written piece by piece after the headers (no
    /// content length; the connection's end ends it), instead of `body`.
    pub stream: Option<Vec<Chunk>>,
}

/// One write of a streamed body, after `delay`.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub delay: Duration,
    pub bytes: String,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
            delay: Duration::ZERO,
            stream: None,
        }
    }

    /// A 200 `text/event-stream` reply of these events (each a complete
    /// `event: ..\ndata: ..\n\n` text), written one by one.
    pub fn events(events: Vec<String>) -> Reply {
        Reply {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            body: String::new(),
            delay: Duration::ZERO,
            stream: Some(
                events
                    .into_iter()
                    .map(|bytes| Chunk {
                        delay: Duration::ZERO,
                        bytes,
                    })
                    .collect(),
            ),
        }
    }

    /// A streamed reply writes each event `gap` after the previous one.
    pub fn every(mut self, gap: Duration) -> Reply {
        for c in self.stream.iter_mut().flatten() {
            c.delay = gap;
        }
        self
    }

    /// A streamed reply waits `d` before its event number `n` (0-based).
    pub fn stall_before(mut self, n: usize, d: Duration) -> Reply {
        let chunks = self
            .stream
            .as_mut()
            .expect("stall_before: a streamed reply");
        assert!(
            n < chunks.len(),
            "stall_before {n}: only {} events",
            chunks.len()
        );
        chunks[n].delay = d;
        self
    }

    /// A streamed reply sends its first `n` events only, then closes.
    pub fn cut_after(mut self, n: usize) -> Reply {
        self.stream
            .as_mut()
            .expect("cut_after: a streamed reply")
            .truncate(n);
        self
    }

    /// How many events a streamed reply writes.
    pub fn event_count(&self) -> usize {
        self.stream.as_ref().map_or(0, Vec::len)
    }

    pub fn raw(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
            delay: Duration::ZERO,
            stream: None,
        }
    }

    /// An error body in the shape both providers use (`error.message`).
    pub fn error(status: u16, code: &str, message: &str) -> Reply {
        Reply::json(
            status,
            json!({"error": {"message": message, "type": code, "code": code}}),
        )
    }

    /// Answer only after `d` (a slow model, or one slower than the client's timeout).
    pub fn delayed(mut self, d: Duration) -> Reply {
        self.delay = d;
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// Replies in the OpenAI chat-completions shape.
pub mod openai {
    use super::Reply;
    use serde_json::{json, Value};

    pub fn text(text: &str, usage: (u64, u64)) -> Reply {
        message(json!({"role": "assistant", "content": text}), usage)
    }

    /// `calls`: (id, tool name, arguments).
    pub fn tool_calls(calls: &[(&str, &str, Value)], usage: (u64, u64)) -> Reply {
        let calls: Vec<Value> = calls
            .iter()
            .map(|(id, name, args)| {
                json!({"id": id, "type": "function", "function": {"name": name, "arguments": args.to_string()}})
            })
            .collect();
        message(
            json!({"role": "assistant", "content": null, "tool_calls": calls}),
            usage,
        )
    }

    /// `text` streamed word by word, then the finish and usage chunks and `[DONE]`.
    pub fn stream_text(text: &str, usage: (u64, u64)) -> Reply {
        stream(json!({"role": "assistant", "content": text}), "stop", usage)
    }

    /// Tool calls streamed as OpenAI does: each call's id and name first,
    /// its arguments in three fragments, the calls' fragments interleaved.
    pub fn stream_tool_calls(calls: &[(&str, &str, Value)], usage: (u64, u64)) -> Reply {
        let calls: Vec<Value> = calls
            .iter()
            .map(|(id, name, args)| {
                json!({"id": id, "type": "function", "function": {"name": name, "arguments": args.to_string()}})
            })
            .collect();
        stream(
            json!({"role": "assistant", "content": null, "tool_calls": calls}),
            "tool_calls",
            usage,
        )
    }

    /// `message` (content and tool calls, as in a plain answer) as a stream.
    pub fn stream(message: Value, finish_reason: &str, (input, output): (u64, u64)) -> Reply {
        let chunk = |delta: Value, finish: Value| {
            json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": "fake",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        };
        let mut chunks = vec![chunk(
            json!({"role": "assistant", "content": ""}),
            Value::Null,
        )];
        if let Some(text) = message["content"].as_str() {
            chunks.extend(
                super::words(text)
                    .into_iter()
                    .map(|w| chunk(json!({"content": w}), Value::Null)),
            );
        }
        let calls = message["tool_calls"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for (i, c) in calls.iter().enumerate() {
            chunks.push(chunk(
                json!({"tool_calls": [{"index": i, "id": c["id"], "type": "function",
                    "function": {"name": c["function"]["name"], "arguments": ""}}]}),
                Value::Null,
            ));
        }
        let pieces: Vec<Vec<String>> = calls
            .iter()
            .map(|c| super::thirds(c["function"]["arguments"].as_str().unwrap_or("")))
            .collect();
        for k in 0..3 {
            for (i, p) in pieces.iter().enumerate() {
                chunks.push(chunk(
                    json!({"tool_calls": [{"index": i, "function": {"arguments": p[k]}}]}),
                    Value::Null,
                ));
            }
        }
        chunks.push(chunk(json!({}), json!(finish_reason)));
        chunks.push(json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": "fake", "choices": [],
            "usage": {"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output}}));
        let mut events: Vec<String> = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
        events.push("data: [DONE]\n\n".into());
        Reply::events(events)
    }

    fn message(message: Value, (input, output): (u64, u64)) -> Reply {
        Reply::json(
            200,
            json!({"id": "chatcmpl-fake", "object": "chat.completion", "model": "fake",
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output}}),
        )
    }
}

/// Replies in the Anthropic Messages shape.
pub mod anthropic {
    use super::Reply;
    use serde_json::{json, Value};

    pub fn text(text: &str, usage: (u64, u64)) -> Reply {
        content(vec![json!({"type": "text", "text": text})], usage)
    }

    pub fn tool_calls(calls: &[(&str, &str, Value)], usage: (u64, u64)) -> Reply {
        content(
            calls
                .iter()
                .map(|(id, name, input)| json!({"type": "tool_use", "id": id, "name": name, "input": input}))
                .collect(),
            usage,
        )
    }

    pub fn stream_text(text: &str, usage: (u64, u64)) -> Reply {
        stream(&[json!({"type": "text", "text": text})], "end_turn", usage)
    }

    pub fn stream_tool_calls(calls: &[(&str, &str, Value)], usage: (u64, u64)) -> Reply {
        let blocks: Vec<Value> = calls
            .iter()
            .map(|(id, name, input)| json!({"type": "tool_use", "id": id, "name": name, "input": input}))
            .collect();
        stream(&blocks, "tool_use", usage)
    }

    /// Content blocks (as in a plain answer) streamed as Anthropic does:
    /// `message_start` with the input tokens, a `ping`, each block opened
    /// empty and filled by deltas — text and thinking word by word, a
    /// thinking block's signature in a `signature_delta`, a `tool_use`
    /// block's input as JSON in three `input_json_delta` pieces, a
    /// `redacted_thinking` block whole — then `message_delta` with the stop
    /// reason and output tokens, and `message_stop`.
    pub fn stream(blocks: &[Value], stop_reason: &str, (input, output): (u64, u64)) -> Reply {
        let mut events = vec![
            json!({"type": "message_start", "message": {"id": "msg_fake", "type": "message", "role": "assistant",
                "model": "fake", "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": input, "output_tokens": 1}}}),
            json!({"type": "ping"}),
        ];
        for (index, b) in blocks.iter().enumerate() {
            let delta = |delta: Value| json!({"type": "content_block_delta", "index": index, "delta": delta});
            let start = |block: Value| json!({"type": "content_block_start", "index": index, "content_block": block});
            match b["type"].as_str() {
                Some("text") => {
                    events.push(start(json!({"type": "text", "text": ""})));
                    for w in super::words(b["text"].as_str().unwrap_or("")) {
                        events.push(delta(json!({"type": "text_delta", "text": w})));
                    }
                }
                Some("thinking") => {
                    events.push(start(json!({"type": "thinking", "thinking": ""})));
                    for w in super::words(b["thinking"].as_str().unwrap_or("")) {
                        events.push(delta(json!({"type": "thinking_delta", "thinking": w})));
                    }
                    events.push(delta(
                        json!({"type": "signature_delta", "signature": b["signature"]}),
                    ));
                }
                Some("tool_use") => {
                    events.push(start(
                        json!({"type": "tool_use", "id": b["id"], "name": b["name"], "input": {}}),
                    ));
                    for p in super::thirds(&b["input"].to_string()) {
                        events.push(delta(
                            json!({"type": "input_json_delta", "partial_json": p}),
                        ));
                    }
                }
                _ => events.push(start(b.clone())),
            }
            events.push(json!({"type": "content_block_stop", "index": index}));
        }
        events.push(json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null},
            "usage": {"output_tokens": output}}));
        events.push(json!({"type": "message_stop"}));
        Reply::events(
            events
                .iter()
                .map(|e| format!("event: {}\ndata: {e}\n\n", e["type"].as_str().unwrap_or("")))
                .collect(),
        )
    }

    fn content(content: Vec<Value>, (input, output): (u64, u64)) -> Reply {
        Reply::json(
            200,
            json!({"id": "msg_fake", "type": "message", "role": "assistant", "model": "fake",
                "content": content, "stop_reason": "end_turn",
                "usage": {"input_tokens": input, "output_tokens": output}}),
        )
    }
}

/// `text` in pieces that end after each space (so they join back exactly).
fn words(text: &str) -> Vec<String> {
    text.split_inclusive(' ').map(str::to_string).collect()
}

/// `text` in three pieces (some possibly empty), cut at char boundaries.
fn thirds(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    let (a, b) = (n / 3, 2 * n / 3);
    vec![
        chars[..a].iter().collect(),
        chars[a..b].iter().collect(),
        chars[b..].iter().collect(),
    ]
}

#[derive(Default)]
struct State {
    queue: VecDeque<Reply>,
    requests: Vec<Request>,
}

/// The server; stops when dropped.
pub struct FakeLlm {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl FakeLlm {
    pub fn start() -> FakeLlm {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || serve(conn, &st));
            }
        });
        FakeLlm { addr, state, stop }
    }

    /// `http://127.0.0.1:PORT`, for `base_url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues replies, answered in order.
    pub fn push(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state
            .lock()
            .expect("fake llm state")
            .queue
            .extend(replies);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().expect("fake llm state").requests.clone()
    }

    pub fn count(&self) -> usize {
        self.state.lock().expect("fake llm state").requests.len()
    }

    /// Replies not used yet.
    pub fn left(&self) -> usize {
        self.state.lock().expect("fake llm state").queue.len()
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Unblock accept().
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(conn: TcpStream, state: &Mutex<State>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let reply = {
        let mut st = state.lock().expect("fake llm state");
        st.requests.push(Request {
            at: Instant::now(),
            path,
            headers,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        });
        st.queue.pop_front().unwrap_or_else(|| {
            Reply::error(500, "fake_exhausted", "fake server: no scripted reply left")
        })
    };
    std::thread::sleep(reply.delay);
    let mut out = format!("HTTP/1.1 {} Fake\r\n", reply.status);
    for (k, v) in &reply.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(chunks) = reply.stream {
        out.push_str("connection: close\r\n\r\n");
        let mut conn = conn;
        if conn
            .write_all(out.as_bytes())
            .and_then(|_| conn.flush())
            .is_err()
        {
            return;
        }
        for c in chunks {
            std::thread::sleep(c.delay);
            // The client may be gone (it gave up on a stall): stop then.
            if conn
                .write_all(c.bytes.as_bytes())
                .and_then(|_| conn.flush())
                .is_err()
            {
                return;
            }
        }
        return;
    }
    out.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n{}",
        reply.body.len(),
        reply.body
    ));
    let mut conn = conn;
    // The client may be gone (killed, or timed out): nothing to do then.
    let _ = conn.write_all(out.as_bytes());
    let _ = conn.flush();
}
