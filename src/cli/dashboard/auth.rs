//! Who may talk to the dashboard.
//!
//! - Loopback (the default): anyone on this machine, as for the files
//!   themselves; the `Host` header must name a loopback host, so a web page
//!   elsewhere cannot reach it through DNS rebinding.
//! - Any other address: every request — pages, JSON, the event stream —
//!   carries the token (`Authorization: Bearer`, or the cookie that
//!   `?token=` sets), compared in constant time.
//! - Every action is a POST carrying the page's CSRF token in a header
//!   (`X-Society-CSRF`), from the page's own origin.
//!
//! Every response says `no-store` and carries a content security policy
//! that allows the page's own assets only.

use super::server::App;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use society_core::Layout;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::PathBuf;
use std::sync::Arc;

/// The header an action's CSRF token travels in.
pub const CSRF_HEADER: &str = "x-society-csrf";
const COOKIE: &str = "society_dashboard";

/// The access token for a non-loopback listener.
pub struct Token {
    pub value: String,
    pub path: PathBuf,
    /// Made now: the URL with it is shown this once.
    pub created: bool,
}

impl Token {
    /// Reads `.society-agent/dashboard/token`, or creates it (0600).
    pub fn load_or_create(layout: &Layout) -> anyhow::Result<Token> {
        let dir = layout.state_dir().join("dashboard");
        let path = dir.join("token");
        society_core::layout::create_private_dir(&dir)?;
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let value = text.trim().to_string();
                if value.len() < 32 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
                    anyhow::bail!(
                        "{} does not hold a dashboard token (64 hex digits); remove it and a new one is made",
                        path.display()
                    );
                }
                return Ok(Token {
                    value,
                    path,
                    created: false,
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
        }
        let value = random_hex(32)?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
        f.write_all(format!("{value}\n").as_bytes())?;
        f.sync_all()?;
        Ok(Token {
            value,
            path,
            created: true,
        })
    }
}

/// `n` random bytes from the kernel, as hex.
pub fn random_hex(n: usize) -> anyhow::Result<String> {
    use std::io::Read as _;
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| anyhow::anyhow!("cannot read /dev/urandom: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Equal, in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn refuse(status: StatusCode, why: &str) -> Response {
    let body = serde_json::json!({"ok": false, "error": why});
    (status, axum::Json(body)).into_response()
}

/// The host part of a `Host` or `Origin` value (`[::1]:7878` → `[::1]`).
fn host_of(value: &str) -> &str {
    let value = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"))
        .unwrap_or(value);
    if let Some(end) = value.find(']') {
        return &value[..=end];
    }
    value.split(':').next().unwrap_or(value)
}

fn loopback_host(host: &str) -> bool {
    matches!(host, "localhost" | "[::1]")
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The token a request carries, if any.
fn presented(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(t) = v.strip_prefix("Bearer ") {
            return Some(t.trim().to_string());
        }
    }
    let cookies = headers.get_all(header::COOKIE);
    for v in cookies.iter().filter_map(|v| v.to_str().ok()) {
        for pair in v.split(';') {
            if let Some((k, val)) = pair.trim().split_once('=') {
                if k == COOKIE {
                    return Some(val.to_string());
                }
            }
        }
    }
    None
}

/// The middleware every request goes through.
pub async fn guard(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    match &app.token {
        None => {
            if !loopback_host(host_of(&host)) {
                return refuse(
                    StatusCode::FORBIDDEN,
                    "this dashboard answers loopback hosts only (Host header); listen elsewhere with --listen and its token",
                );
            }
        }
        Some(token) => {
            let query_token = req.uri().query().and_then(|q| {
                q.split('&')
                    .find_map(|kv| kv.strip_prefix("token=").map(str::to_string))
            });
            if let Some(t) = query_token {
                if !same(&t, token) {
                    return refuse(StatusCode::UNAUTHORIZED, "wrong token");
                }
                // Trade the URL's token for a cookie, and drop it from the
                // address bar (and from history and Referer).
                let rest: Vec<&str> = req
                    .uri()
                    .query()
                    .unwrap_or_default()
                    .split('&')
                    .filter(|kv| !kv.is_empty() && !kv.starts_with("token="))
                    .collect();
                let mut to = req.uri().path().to_string();
                if !rest.is_empty() {
                    to = format!("{to}?{}", rest.join("&"));
                }
                let mut resp = Redirect::to(&to).into_response();
                let cookie = format!("{COOKIE}={t}; Path=/; HttpOnly; SameSite=Strict");
                if let Ok(v) = HeaderValue::from_str(&cookie) {
                    resp.headers_mut().insert(header::SET_COOKIE, v);
                }
                return resp;
            }
            if !presented(headers).is_some_and(|t| same(&t, token)) {
                return refuse(
                    StatusCode::UNAUTHORIZED,
                    "this dashboard needs its token: open the URL `society dashboard` printed, or send `Authorization: Bearer <token>` (the token is in .society-agent/dashboard/token)",
                );
            }
        }
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let csrf_ok = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| same(v, &app.csrf));
        if !csrf_ok {
            return refuse(
                StatusCode::FORBIDDEN,
                "missing or wrong X-Society-CSRF header: actions come from the dashboard's own page",
            );
        }
        if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
            let bare = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                .unwrap_or(origin);
            if bare != host {
                return refuse(StatusCode::FORBIDDEN, "cross-origin request refused");
            }
        }
    }
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_tokens() {
        assert_eq!(host_of("127.0.0.1:7878"), "127.0.0.1");
        assert_eq!(host_of("[::1]:7878"), "[::1]");
        assert_eq!(host_of("http://localhost:1"), "localhost");
        assert!(loopback_host("127.0.0.2"));
        assert!(loopback_host("localhost"));
        assert!(!loopback_host("evil.example"));
        assert!(!loopback_host("127.0.0.1.evil.example"));
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "abcd"));
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; society_dashboard=tok"),
        );
        assert_eq!(presented(&h).as_deref(), Some("tok"));
    }
}
