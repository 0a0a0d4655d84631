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
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    pub fn raw(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
            delay: Duration::ZERO,
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

    fn content(content: Vec<Value>, (input, output): (u64, u64)) -> Reply {
        Reply::json(
            200,
            json!({"id": "msg_fake", "type": "message", "role": "assistant", "model": "fake",
                "content": content, "stop_reason": "end_turn",
                "usage": {"input_tokens": input, "output_tokens": output}}),
        )
    }
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
