//! Raw HTTP/1.1 over a `TcpStream`, on loopback only: what the tests send
//! must reach the server byte for byte (`GET /../../etc/passwd` would be
//! cleaned up by any real client), and the guards are checked below the page.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// How long one request may take before the test fails.
const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// A response: its status, its head (status line and headers), its body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl Reply {
    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The body as JSON (the test fails if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.head, self.body))
    }
}

/// A request to `127.0.0.1:port`, sent as is.
pub struct Request<'a> {
    port: u16,
    method: &'a str,
    target: &'a str,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

impl<'a> Request<'a> {
    pub fn get(port: u16, target: &'a str) -> Request<'a> {
        Request::new(port, "GET", target)
    }

    pub fn post(port: u16, target: &'a str, body: &serde_json::Value) -> Request<'a> {
        let mut r = Request::new(port, "POST", target);
        r.body = Some(body.to_string());
        r.header("Content-Type", "application/json")
    }

    fn new(port: u16, method: &'a str, target: &'a str) -> Request<'a> {
        Request {
            port,
            method,
            target,
            headers: vec![("Host".into(), format!("127.0.0.1:{port}"))],
            body: None,
        }
    }

    /// Sets header `name` (replacing the `Host` every request starts with).
    pub fn header(mut self, name: &str, value: &str) -> Request<'a> {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.into(), value.into()));
        self
    }

    fn connect(&self, close: bool) -> TcpStream {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut text = format!("{} {} HTTP/1.1\r\n", self.method, self.target);
        for (k, v) in &self.headers {
            text.push_str(&format!("{k}: {v}\r\n"));
        }
        if close {
            text.push_str("Connection: close\r\n");
        }
        if let Some(b) = &self.body {
            text.push_str(&format!("Content-Length: {}\r\n", b.len()));
        }
        text.push_str("\r\n");
        text.push_str(self.body.as_deref().unwrap_or_default());
        stream.write_all(text.as_bytes()).unwrap();
        stream
    }

    /// Sends it and reads the whole response: as long as its
    /// `Content-Length` says, to the last chunk, or else to the end of the
    /// connection (`Connection: close`).
    pub fn send(self) -> Reply {
        let mut stream = self.connect(true);
        let mut raw = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            if let Some(reply) = complete(&raw) {
                return reply;
            }
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
                Err(e) => panic!(
                    "reading the answer to {} {}: {e} after {:?}",
                    self.method,
                    self.target,
                    String::from_utf8_lossy(&raw)
                ),
            }
        }
        parse(&raw).unwrap_or_else(|| {
            panic!(
                "not an HTTP response to {} {}: {:?}",
                self.method,
                self.target,
                String::from_utf8_lossy(&raw)
            )
        })
    }

    /// Sends it and reads only the status line: for an event stream, whose
    /// body never ends.
    pub fn status(self) -> u16 {
        let mut stream = self.connect(false);
        let mut raw = Vec::new();
        let mut byte = [0u8; 1];
        while !raw.ends_with(b"\r\n") {
            match stream.read(&mut byte) {
                Ok(1) => raw.push(byte[0]),
                other => panic!(
                    "no status line for {} {}: {other:?} after {:?}",
                    self.method,
                    self.target,
                    String::from_utf8_lossy(&raw)
                ),
            }
        }
        status_code(&String::from_utf8_lossy(&raw))
            .unwrap_or_else(|| panic!("bad status line {:?}", String::from_utf8_lossy(&raw)))
    }
}

fn status_code(line: &str) -> Option<u16> {
    line.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// The response in `raw`, once all of it has arrived by its own framing
/// (`Content-Length`, or chunks); `None` while more is to come or when
/// only the end of the connection can tell.
fn complete(raw: &[u8]) -> Option<Reply> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let body = &raw[split + 4..];
    let value = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_ascii_lowercase())
        })
    };
    if value("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        unchunk(body)?;
        return parse(raw);
    }
    let len: usize = value("content-length")?.parse().ok()?;
    (body.len() >= len).then(|| parse(raw)).flatten()
}

fn parse(raw: &[u8]) -> Option<Reply> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let status = status_code(head.lines().next()?)?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if chunked {
        body = unchunk(&body)?;
    }
    Some(Reply {
        status,
        head,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Decodes a chunked body (RFC 9112 §7.1), extensions and trailers ignored.
fn unchunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = raw.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&raw[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}
